-- Catalog #19. ADD PRIMARY KEY USING INDEX on nullable columns makes them NOT NULL first: a
-- full scan while the table is locked against everything.
--
-- The statement names only the index. The rule remembers, since ddlguard started (per
-- environment and database, names as written), the columns of the unique indexes it saw
-- created ("<index>" -> "|uid|tenant_id|") and the columns it saw added nullable or made
-- nullable ("<table>.<column>" -> true; SET NOT NULL and primary keys clear them). It flags
-- only a column it knows to be nullable: a column it knows nothing about passes.
-- Bounded: the newest 1000 entries and the 1000 before them.
local new, old, count = {}, {}, 0

local function recall(k)
  local v = new[k]
  if v == nil then v = old[k] end
  return v
end

local function remember(k, v)
  if v == nil then new[k], old[k] = nil, nil return end
  if new[k] == nil then count = count + 1 end
  new[k] = v
  if count >= 1000 then new, old, count = {}, new, 0 end
end

local serial = {
  serial = true, serial4 = true, bigserial = true, serial8 = true, smallserial = true, serial2 = true,
}

-- Is a column added nullable? (Not with NOT NULL, PRIMARY KEY, IDENTITY or a serial type.)
local function nullable(col)
  for _, c in ipairs(col.constraints) do
    local k = c.contype
    if k == "CONSTR_NOTNULL" or k == "CONSTR_PRIMARY" or k == "CONSTR_IDENTITY" then return nil end
  end
  local names = col.type_name.names
  if #names == 1 and serial[names[1].sval] then return nil end
  return true
end

return {
  id = "pk-using-index-nullable",
  severity = "P0", class = "REWRITE",
  summary = "ADD PRIMARY KEY USING INDEX on a nullable column scans the table while it blocks it",
  why = "A primary key's columns must be NOT NULL. When a column of the index is nullable, ADD "
     .. "PRIMARY KEY USING INDEX sets NOT NULL itself, which reads every row under the ACCESS "
     .. "EXCLUSIVE lock it holds: no reads or writes until the scan ends.",
  instead = "Make the columns NOT NULL first, without a blocking scan: ADD CONSTRAINT … CHECK "
     .. "(col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT (separate transaction), SET NOT NULL "
     .. "(PostgreSQL 12+ skips the scan), then ADD PRIMARY KEY USING INDEX.",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    local db = session.environment .. "/" .. session.database .. "/"
    local tree = stmt.tag == "CREATE INDEX" and stmt.tree
    if tree and tree.unique and tree.idxname then
      local cols = "|"
      for _, p in ipairs(tree.index_params) do cols = cols .. (p.name or "(expression)") .. "|" end
      remember(db .. tree.idxname, cols)
    end
    if stmt.node ~= "AlterTableStmt" or stmt.tag ~= "ALTER TABLE" then return nil end
    local t = stmt.objects[1]
    local tk = db .. qualified(t)
    for i, sub in ipairs(stmt.subcommands) do
      -- The i-th sub-command is the i-th command of the parse tree.
      if sub.name == "ADD COLUMN" then
        remember(tk .. "." .. sub.column, nullable(stmt.tree.cmds[i].def))
      elseif sub.name == "DROP NOT NULL" then
        remember(tk .. "." .. sub.column, true)
      elseif sub.name == "SET NOT NULL" then
        remember(tk .. "." .. sub.column, nil)
      elseif string.find(sub.name, "^ADD CONSTRAINT PRIMARY KEY") then
        local d = stmt.tree.cmds[i].def
        -- USING INDEX names the index; ADD PRIMARY KEY (cols) names the columns.
        local cols = d.indexname and recall(db .. d.indexname) or "|"
        for _, k in ipairs(d.keys) do cols = cols .. k.sval .. "|" end
        for c in string.gmatch(cols, "[^|]+") do
          if d.indexname and recall(tk .. "." .. c) and not ctx.new(t) and not ctx.small(t) then
            return "ADD PRIMARY KEY USING INDEX " .. d.indexname .. " on " .. qualified(t)
                   .. ": column " .. c .. " is nullable, so it is checked for NULLs while the "
                   .. "table is blocked" .. ctx.lock_note(t)
          end
          remember(tk .. "." .. c, nil)
        end
      end
    end
  end,
}

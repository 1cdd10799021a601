-- Catalog #19. ADD PRIMARY KEY USING INDEX on nullable columns makes them NOT NULL first: a
-- full scan while the table is locked against everything.
--
-- The statement names only the index. The rule remembers, since ddlguard started (per
-- environment and database, names as written), the columns of the indexes it saw created and
-- which columns it saw made nullable or NOT NULL (CREATE TABLE, ADD COLUMN, SET / DROP NOT
-- NULL, primary keys). It flags only a column it knows to be nullable: a column it knows
-- nothing about passes.
local indexes = {}    -- index key -> list of column names
local nullable = {}   -- "table key.column" -> true (nullable) or false (NOT NULL)
local remembered = 0
local serial = {
  serial = true, serial4 = true, bigserial = true, serial8 = true, smallserial = true, serial2 = true,
}

local function key(session, name)
  return session.environment .. "/" .. session.database .. "/" .. name
end

local function note(k, v)
  if remembered > 20000 then indexes, nullable, remembered = {}, {}, 0 end
  remembered = remembered + 1
  nullable[k] = v
end

-- Does a column definition say NOT NULL (or something that implies it)?
local function declared_not_null(col)
  for _, c in ipairs(col.constraints) do
    local k = c.contype
    if k == "CONSTR_NOTNULL" or k == "CONSTR_PRIMARY" or k == "CONSTR_IDENTITY" then return true end
  end
  local names = col.type_name.names
  return #names == 1 and serial[names[1].sval] == true
end

local function learn(stmt, session)
  local t = stmt.tree
  if t.node_type == "CreateStmt" then
    local tk = key(session, qualified(stmt.objects[1]))
    for _, e in ipairs(t.table_elts) do
      if e.node_type == "ColumnDef" then note(tk .. "." .. e.colname, not declared_not_null(e)) end
      if e.node_type == "Constraint" and e.contype == "CONSTR_PRIMARY" then
        for _, k in ipairs(e.keys) do note(tk .. "." .. k.sval, false) end
      end
    end
  elseif t.node_type == "IndexStmt" and t.idxname then
    local cols = {}
    for _, p in ipairs(t.index_params) do cols[#cols + 1] = p.name end
    remembered = remembered + 1
    indexes[key(session, t.idxname)] = cols
  elseif t.node_type == "DropStmt" and t.remove_type == "OBJECT_INDEX" then
    for _, o in ipairs(stmt.objects) do indexes[key(session, o.name)] = nil end
  end
end

return {
  id = "pk-using-index-nullable",
  severity = "P0", class = "REWRITE",
  summary = "ADD PRIMARY KEY USING INDEX on a nullable column scans the table while it blocks it",
  why = "A primary key's columns must be NOT NULL. When a column of the index is nullable, ADD "
     .. "PRIMARY KEY USING INDEX sets NOT NULL itself, which reads every row under the ACCESS "
     .. "EXCLUSIVE lock it holds: no reads or writes until the scan ends.",
  instead = "Make the columns NOT NULL first, without a blocking scan: ADD CONSTRAINT … CHECK (col IS "
     .. "NOT NULL) NOT VALID, VALIDATE CONSTRAINT (separate transaction), SET NOT NULL (PostgreSQL 12+ "
     .. "skips the scan), then ADD PRIMARY KEY USING INDEX.",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    learn(stmt, session)
    if stmt.node ~= "AlterTableStmt" or stmt.tag ~= "ALTER TABLE" then return nil end
    local t = stmt.objects[1]
    local tk = key(session, qualified(t))
    for _, cmd in ipairs(stmt.tree.cmds) do
      local d, col = cmd.def, cmd.name
      if cmd.subtype == "AT_AddColumn" then
        note(tk .. "." .. d.colname, not declared_not_null(d))
      elseif cmd.subtype == "AT_SetNotNull" or cmd.subtype == "AT_DropNotNull" then
        note(tk .. "." .. col, cmd.subtype == "AT_DropNotNull")
      elseif cmd.subtype == "AT_AddConstraint" and d.contype == "CONSTR_PRIMARY" then
        -- USING INDEX names the index; ADD PRIMARY KEY (cols) names the columns.
        local cols = {}
        for _, c in ipairs(d.indexname and indexes[key(session, d.indexname)] or {}) do
          cols[#cols + 1] = c
        end
        for _, k in ipairs(d.keys) do cols[#cols + 1] = k.sval end
        for _, c in ipairs(cols) do
          if d.indexname and nullable[tk .. "." .. c] and not ctx.new(t) and not ctx.small(t) then
            return "ADD PRIMARY KEY USING INDEX " .. d.indexname .. " on " .. qualified(t) .. ": column "
                   .. c .. " is nullable, so it is checked for NULLs while the table is blocked"
                   .. ctx.lock_note(t)
          end
          note(tk .. "." .. c, false)
        end
      end
    end
  end,
}

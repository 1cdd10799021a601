-- Catalog #13. ALTER COLUMN … SET NOT NULL scans the whole table under ACCESS EXCLUSIVE,
-- unless a validated CHECK (col IS NOT NULL) already proves it (PostgreSQL 12+).
--
-- Which CHECK constraints a table has is not in the statement's text. The rule remembers the
-- CHECK (… IS NOT NULL) constraints it has seen added, validated and dropped since ddlguard
-- started (per environment, database and table name as written), so the safe recipe passes
-- even when its steps are in different migrations. Two kinds of entries, both strings:
--   "<table>|<constraint>" -> "|email|name|"   the columns the CHECK proves once validated
--   "<table>#<column>"     -> "<constraint>"   a validated CHECK proves the column NOT NULL
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

-- The columns a CHECK expression proves NOT NULL: `c IS NOT NULL`, joined with AND.
local function not_null_columns(e, cols)
  if e.node_type == "NullTest" and e.nulltesttype == "IS_NOT_NULL"
     and e.arg.node_type == "ColumnRef" then
    local f = e.arg.fields
    cols = cols .. f[#f].sval .. "|"
  elseif e.node_type == "BoolExpr" and e.boolop == "AND_EXPR" then
    for _, a in ipairs(e.args) do cols = not_null_columns(a, cols) end
  end
  return cols
end

-- The constraint `name` on table `tk` is now validated: it proves its columns.
local function validated(tk, name)
  for col in string.gmatch(recall(tk .. "|" .. name) or "", "[^|]+") do
    remember(tk .. "#" .. col, name)
  end
end

return {
  id = "set-not-null",
  severity = "P0", class = "REWRITE",
  summary = "SET NOT NULL scans the whole table while it blocks reads and writes",
  why = "ALTER COLUMN … SET NOT NULL takes ACCESS EXCLUSIVE and reads every row to check for NULLs: "
     .. "no reads or writes until the scan ends, and it fails if a NULL remains. PostgreSQL 12+ skips "
     .. "the scan when a validated CHECK (col IS NOT NULL) exists; a NOT VALID one does not help.",
  instead = "ALTER TABLE t ADD CONSTRAINT t_col_not_null CHECK (col IS NOT NULL) NOT VALID; then, in "
     .. "a separate transaction, ALTER TABLE t VALIDATE CONSTRAINT t_col_not_null (no blocking); then "
     .. "ALTER COLUMN col SET NOT NULL (no scan) and DROP CONSTRAINT t_col_not_null. "
     .. "(PostgreSQL 18: NOT NULL … NOT VALID.)",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    if stmt.node ~= "AlterTableStmt" or stmt.tag ~= "ALTER TABLE" then return nil end
    local t = stmt.objects[1]
    local tk = session.environment .. "/" .. session.database .. "/" .. qualified(t)
    for i, sub in ipairs(stmt.subcommands) do
      local name = sub.column   -- the constraint's name, or the column's for SET NOT NULL
      if sub.name == "ADD CONSTRAINT CHECK" then
        -- The i-th sub-command is the i-th command of the parse tree.
        local cols = not_null_columns(stmt.tree.cmds[i].def.raw_expr, "|")
        if cols ~= "|" then
          name = name or ("#" .. i)
          remember(tk .. "|" .. name, cols)
          if not sub.not_valid then validated(tk, name) end
        end
      elseif sub.name == "VALIDATE CONSTRAINT" then
        validated(tk, name)
      elseif sub.name == "DROP CONSTRAINT" then
        for col in string.gmatch(recall(tk .. "|" .. name) or "", "[^|]+") do
          if recall(tk .. "#" .. col) == name then remember(tk .. "#" .. col, nil) end
        end
        remember(tk .. "|" .. name, nil)
      elseif sub.name == "SET NOT NULL" and not recall(tk .. "#" .. name)
             and not ctx.new(t) and not ctx.small(t) then
        return "SET NOT NULL on " .. qualified(t) .. "." .. name
               .. " scans the whole table while it blocks reads and writes" .. ctx.lock_note(t)
      end
    end
  end,
}

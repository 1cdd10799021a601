-- Catalog #13. ALTER COLUMN … SET NOT NULL scans the whole table under ACCESS EXCLUSIVE,
-- unless a validated CHECK (col IS NOT NULL) already proves it (PostgreSQL 12+).
--
-- Which CHECK constraints a table has is not in the statement's text. The rule remembers the
-- CHECK (… IS NOT NULL) constraints it has seen added, validated and dropped since ddlguard
-- started (per environment, database and table name as written), so the safe recipe passes
-- even when its steps are in different migrations.
local checks = {}   -- table key -> constraint name -> { cols = { col = true }, valid = bool }
local remembered = 0

local function key(session, name)
  return session.environment .. "/" .. session.database .. "/" .. name
end

-- The columns a CHECK expression proves NOT NULL: `c IS NOT NULL`, joined with AND.
local function not_null_columns(e, cols)
  if e.node_type == "NullTest" and e.nulltesttype == "IS_NOT_NULL"
     and e.arg.node_type == "ColumnRef" then
    local f = e.arg.fields
    cols[f[#f].sval] = true
  elseif e.node_type == "BoolExpr" and e.boolop == "AND_EXPR" then
    for _, a in ipairs(e.args) do not_null_columns(a, cols) end
  end
  return cols
end

local function proven(known, col)
  for _, c in pairs(known) do
    if c.valid and c.cols[col] then return true end
  end
  return false
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
    if stmt.tag == "DROP TABLE" then
      for _, o in ipairs(stmt.objects) do checks[key(session, qualified(o))] = nil end
    end
    if stmt.node ~= "AlterTableStmt" or stmt.tag ~= "ALTER TABLE" then return nil end
    local t = stmt.objects[1]
    local k = key(session, qualified(t))
    if not checks[k] then
      if remembered > 10000 then checks, remembered = {}, 0 end
      remembered = remembered + 1
      checks[k] = {}
    end
    local known = checks[k]
    for n, cmd in ipairs(stmt.tree.cmds) do
      local c = cmd.def
      if cmd.subtype == "AT_AddConstraint" and c.contype == "CONSTR_CHECK" then
        local cols = not_null_columns(c.raw_expr, {})
        known[c.conname or ("#" .. n)] = { cols = cols, valid = not c.skip_validation }
      elseif cmd.subtype == "AT_ValidateConstraint" and known[cmd.name] then
        known[cmd.name].valid = true
      elseif cmd.subtype == "AT_DropConstraint" then
        known[cmd.name] = nil
      elseif cmd.subtype == "AT_SetNotNull" and not proven(known, cmd.name)
             and not ctx.new(t) and not ctx.small(t) then
        return "SET NOT NULL on " .. qualified(t) .. "." .. cmd.name
               .. " scans the whole table while it blocks reads and writes" .. ctx.lock_note(t)
      end
    end
  end,
}

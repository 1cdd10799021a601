-- Catalog #52. json keeps the text as written and has no equality operator; jsonb is what apps want.

-- The columns a statement defines, each { name, def = ColumnDef }: the columns of CREATE
-- TABLE, and ADD COLUMN and ALTER COLUMN … TYPE of ALTER TABLE.
local function columns(stmt)
  local t, out = stmt.tree, {}
  if t.node_type == "CreateStmt" then
    for _, e in ipairs(t.table_elts) do
      if e.node_type == "ColumnDef" then out[#out + 1] = { name = e.colname, def = e } end
    end
  elseif t.node_type == "AlterTableStmt" then
    for _, c in ipairs(t.cmds) do
      if c.subtype == "AT_AddColumn" then out[#out + 1] = { name = c.def.colname, def = c.def } end
      if c.subtype == "AT_AlterColumnType" then out[#out + 1] = { name = c.name, def = c.def } end
    end
  end
  return out
end

-- The type's own name without its schema, as the parser spells it: int4, varchar, json …
local function type_of(def)
  local names = def.type_name and def.type_name.names
  return names and names[#names].sval
end

return {
  id = "prefer-jsonb",
  severity = "P2", class = "STYLE",
  summary = "A json column: use jsonb",
  why = "json stores the text as written and has no equality operator, so SELECT DISTINCT, UNION, "
     .. "GROUP BY and comparisons on the column fail, it cannot be indexed with GIN, and every "
     .. "access reparses it. Changing it to jsonb later rewrites the table under ACCESS EXCLUSIVE.",
  instead = "Declare the column jsonb.",
  default = "warn", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    for _, c in ipairs(columns(stmt)) do
      if type_of(c.def) == "json" then
        return "column " .. qualified(stmt.objects[1]) .. "." .. c.name .. " is json: use jsonb"
      end
    end
  end,
}

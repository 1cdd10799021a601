-- Catalog #56. timestamp without time zone silently drops the offset of every value written to it.

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
  id = "prefer-timestamptz",
  severity = "P3", class = "STYLE",
  summary = "A timestamp (without time zone) column: use timestamptz",
  why = "timestamp keeps the wall-clock digits and silently drops any offset the app sends, so the "
     .. "same instant reads differently depending on who wrote it, and arithmetic across DST "
     .. "changes is wrong. Converting it later rewrites the table unless TimeZone is UTC.",
  instead = "Declare the column timestamptz (timestamp with time zone); it stores an instant and "
     .. "shows it in the session's TimeZone.",
  default = "off", strict = "warn",
  override = true,
  check = function(stmt, session, ctx)
    for _, c in ipairs(columns(stmt)) do
      if type_of(c.def) == "timestamp" then
        return "column " .. qualified(stmt.objects[1]) .. "." .. c.name
            .. " is timestamp without time zone: use timestamptz"
      end
    end
  end,
}

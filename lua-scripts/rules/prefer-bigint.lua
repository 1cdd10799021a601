-- Catalog #53. A 32-bit (or 16-bit) integer column overflows one day, and widening it rewrites the table.

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

-- The narrow integer types, by the parser's name, with the name a DBA writes.
local small = { int4 = "integer", int2 = "smallint", serial = "serial", serial4 = "serial",
                smallserial = "smallserial", serial2 = "smallserial" }

return {
  id = "prefer-bigint",
  severity = "P3", class = "STYLE",
  summary = "An integer or smallint column: use bigint",
  why = "Ids and counters outgrow 2^31 (or 2^15) sooner than expected; when they do, inserts fail, "
     .. "and ALTER COLUMN … TYPE bigint rewrites the table and its indexes under ACCESS EXCLUSIVE. "
     .. "bigint costs 4 more bytes per row.",
  instead = "Declare the column bigint (bigint GENERATED ALWAYS AS IDENTITY for an id).",
  default = "off", strict = "warn",
  override = true,
  check = function(stmt, session, ctx)
    for _, c in ipairs(columns(stmt)) do
      local name = small[type_of(c.def)]
      if name then
        return "column " .. qualified(stmt.objects[1]) .. "." .. c.name .. " is " .. name .. ": use bigint"
      end
    end
  end,
}

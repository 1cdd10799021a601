-- Catalog #55. A length limit in the type is hard to change later; a CHECK is easy to change.

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
  id = "prefer-text",
  severity = "P3", class = "STYLE",
  summary = "A varchar(n) column: use text, with a CHECK when the length matters",
  why = "varchar(n) is stored exactly like text. Raising n later still takes ACCESS EXCLUSIVE on "
     .. "the table, and lowering it rewrites the table; a CHECK constraint can be replaced with "
     .. "NOT VALID and VALIDATE without blocking writes.",
  instead = "Declare the column text and, when the limit matters, add CHECK (char_length(col) <= n) "
     .. "(NOT VALID, then VALIDATE CONSTRAINT, when added to an existing table).",
  default = "off", strict = "warn",
  override = true,
  check = function(stmt, session, ctx)
    for _, c in ipairs(columns(stmt)) do
      -- Plain varchar without a length is text under another name: fine.
      if type_of(c.def) == "varchar" and #c.def.type_name.typmods > 0 then
        return "column " .. qualified(stmt.objects[1]) .. "." .. c.name
            .. " is varchar(n): use text with a CHECK on its length"
      end
    end
  end,
}

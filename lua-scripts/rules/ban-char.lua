-- Catalog #57. char(n) pads with blanks and is no faster than text.

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
  id = "ban-char",
  severity = "P3", class = "STYLE",
  summary = "A char(n) column: use text",
  why = "char(n) pads every value with blanks to n characters, strips them again in comparisons "
     .. "and casts, surprises apps that compare or concatenate values, and is stored no more "
     .. "compactly or faster than text. Changing n later takes ACCESS EXCLUSIVE.",
  instead = "Declare the column text, with CHECK (char_length(col) = n) when the length is fixed.",
  default = "off", strict = "warn",
  override = true,
  check = function(stmt, session, ctx)
    for _, c in ipairs(columns(stmt)) do
      -- The parser names char(n) and character(n) "bpchar"; the one-byte "char" is another type.
      if type_of(c.def) == "bpchar" then
        return "column " .. qualified(stmt.objects[1]) .. "." .. c.name .. " is char(n): use text"
      end
    end
  end,
}

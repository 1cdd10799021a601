-- Catalog #54. serial is a sequence and a default bolted onto a column; identity is the standard form.

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

-- serial, bigserial and smallserial, with their aliases.
local serials = { serial = true, serial4 = true, bigserial = true, serial8 = true,
                  smallserial = true, serial2 = true }

return {
  id = "prefer-identity",
  severity = "P3", class = "STYLE",
  summary = "A serial column: use an identity column",
  why = "serial creates a separate sequence plus a DEFAULT nextval(): the sequence needs its own "
     .. "grants (USAGE for every role that inserts), ownership and dumps are easy to get wrong, and "
     .. "nothing stops inserts of explicit values that later collide with the sequence.",
  instead = "bigint GENERATED ALWAYS AS IDENTITY (or BY DEFAULT AS IDENTITY when the app must "
     .. "sometimes supply the value).",
  default = "off", strict = "warn",
  override = true,
  check = function(stmt, session, ctx)
    for _, c in ipairs(columns(stmt)) do
      local ty = type_of(c.def)
      if serials[ty] then
        return "column " .. qualified(stmt.objects[1]) .. "." .. c.name .. " is " .. ty
            .. ": use GENERATED ALWAYS AS IDENTITY"
      end
    end
  end,
}

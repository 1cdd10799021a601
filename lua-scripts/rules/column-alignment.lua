-- Catalog #63 (opt-in). Columns are stored in declared order, each aligned on its type's boundary,
-- so a bigint after a boolean costs 7 bytes of padding in every row.

-- Fixed-width types by the parser's name: { bytes, alignment }. Every other type (text,
-- varchar, numeric, jsonb, arrays, enums, domains …) is variable-width or unknown: left out.
local fixed = {
  int8 = { 8, 8 }, bigserial = { 8, 8 }, serial8 = { 8, 8 }, float8 = { 8, 8 }, money = { 8, 8 },
  timestamp = { 8, 8 }, timestamptz = { 8, 8 }, time = { 8, 8 }, interval = { 16, 8 },
  timetz = { 12, 8 }, int4 = { 4, 4 }, serial = { 4, 4 }, serial4 = { 4, 4 }, float4 = { 4, 4 },
  date = { 4, 4 }, oid = { 4, 4 }, int2 = { 2, 2 }, smallserial = { 2, 2 }, serial2 = { 2, 2 },
  bool = { 1, 1 }, char = { 1, 1 }, uuid = { 16, 1 },
}

-- Bytes a row of these columns takes, in this order, padded to the final 8-byte boundary.
local function row_bytes(cols)
  local offset = 0
  for _, c in ipairs(cols) do
    offset = (offset + c.align - 1) // c.align * c.align + c.bytes
  end
  return (offset + 7) // 8 * 8
end

return {
  id = "column-alignment",
  severity = "P3", class = "STYLE",
  summary = "CREATE TABLE column order wastes space on alignment padding",
  why = "PostgreSQL stores columns in the declared order and aligns each fixed-width value on its "
     .. "size (8 bytes for bigint and timestamptz, 4 for integer and date …), padding the gap: "
     .. "boolean, bigint, boolean, bigint takes 32 bytes per row where bigint, bigint, boolean, "
     .. "boolean takes 24. On a big table that is disk, cache and I/O spent on nothing.",
  instead = "Declare fixed-width columns from the widest alignment to the narrowest (bigint, "
     .. "timestamptz, double precision; then integer, date; then smallint; then boolean, uuid), "
     .. "then the variable-width ones (text, numeric, jsonb …).",
  default = "off", strict = "warn",
  override = true,
  check = function(stmt, session, ctx)
    if stmt.node ~= "CreateStmt" then return nil end
    local cols = {}
    for _, e in ipairs(stmt.tree.table_elts) do
      local names = e.node_type == "ColumnDef" and e.type_name and e.type_name.names
      local f = names and #e.type_name.array_bounds == 0 and fixed[names[#names].sval]
      if f then cols[#cols + 1] = { name = e.colname, bytes = f[1], align = f[2], pos = #cols } end
    end
    local declared = row_bytes(cols)
    -- Widest alignment first; columns of the same alignment keep their declared order.
    table.sort(cols, function(a, b)
      return a.align > b.align or (a.align == b.align and a.pos < b.pos)
    end)
    local best = row_bytes(cols)
    if declared - best >= 8 then
      local order = {}
      for i, c in ipairs(cols) do order[i] = c.name end
      return string.format("the fixed-width columns of %s take %d bytes per row in this order, %d in "
                           .. "this one: %s (then the variable-width columns)",
                           qualified(stmt.objects[1]), declared, best, table.concat(order, ", "))
    end
  end,
}

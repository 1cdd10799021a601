-- Catalog #53. A 32-bit (or 16-bit) integer column overflows one day, and widening it rewrites the table.

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
    for _, c in ipairs(ctx.columns(stmt)) do
      local name = small[ctx.type_of(c.def)]
      if name then
        return "column " .. qualified(stmt.objects[1]) .. "." .. c.name .. " is " .. name .. ": use bigint"
      end
    end
  end,
}

-- Catalog #54. serial is a sequence and a default bolted onto a column; identity is the standard form.

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
    for _, c in ipairs(ctx.columns(stmt)) do
      local ty = ctx.type_of(c.def)
      if serials[ty] then
        return "column " .. qualified(stmt.objects[1]) .. "." .. c.name .. " is " .. ty
            .. ": use GENERATED ALWAYS AS IDENTITY"
      end
    end
  end,
}

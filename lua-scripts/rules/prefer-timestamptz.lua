-- Catalog #56. timestamp without time zone silently drops the offset of every value written to it.

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
    for _, c in ipairs(ctx.columns(stmt)) do
      if ctx.type_of(c.def) == "timestamp" then
        return "column " .. qualified(stmt.objects[1]) .. "." .. c.name
            .. " is timestamp without time zone: use timestamptz"
      end
    end
  end,
}

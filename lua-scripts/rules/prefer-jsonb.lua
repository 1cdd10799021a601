-- Catalog #52. json keeps the text as written and has no equality operator; jsonb is what apps want.

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
    for _, c in ipairs(ctx.columns(stmt)) do
      if ctx.type_of(c.def) == "json" then
        return "column " .. qualified(stmt.objects[1]) .. "." .. c.name .. " is json: use jsonb"
      end
    end
  end,
}

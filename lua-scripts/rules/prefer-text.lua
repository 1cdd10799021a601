-- Catalog #55. A length limit in the type is hard to change later; a CHECK is easy to change.

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
    for _, c in ipairs(ctx.columns(stmt)) do
      -- Plain varchar without a length is text under another name: fine.
      if ctx.type_of(c.def) == "varchar" and #c.def.type_name.typmods > 0 then
        return "column " .. qualified(stmt.objects[1]) .. "." .. c.name
            .. " is varchar(n): use text with a CHECK on its length"
      end
    end
  end,
}

-- Catalog #57. char(n) pads with blanks and is no faster than text.

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
    for _, c in ipairs(ctx.columns(stmt)) do
      -- The parser names char(n) and character(n) "bpchar"; the one-byte "char" is another type.
      if ctx.type_of(c.def) == "bpchar" then
        return "column " .. qualified(stmt.objects[1]) .. "." .. c.name .. " is char(n): use text"
      end
    end
  end,
}

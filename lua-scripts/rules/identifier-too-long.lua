-- Catalog #59. PostgreSQL cuts names to 63 bytes with only a NOTICE, so later references miss.
-- The parser has already cut them, so the rule looks for names of (nearly) 63 bytes in the
-- parse tree and checks the statement's text for the longer name they came from.

-- Every string of 60 to 63 bytes in the parse tree (multibyte names are cut a little shorter).
local function cut_names(node, out)
  for _, v in pairs(node) do
    if type(v) == "string" and #v >= 60 and #v <= 63 then out[#out + 1] = v end
    if type(v) == "userdata" then cut_names(v, out) end
  end
  return out
end

return {
  id = "identifier-too-long",
  severity = "P3", class = "STYLE",
  summary = "A name longer than 63 bytes is silently truncated",
  why = "PostgreSQL keeps only the first 63 bytes of a name and says so in a NOTICE that migration "
     .. "tools do not show. Later statements and the app that use the full name then miss the "
     .. "object, and two long names with the same first 63 bytes collide.",
  instead = "Use a name of at most 63 bytes (shorten the prefix, abbreviate), and use that exact "
     .. "name everywhere.",
  default = "off", strict = "warn",
  override = true,
  check = function(stmt, session, ctx)
    -- Unquoted names are folded to lower case in the tree; quoted ones keep their case.
    for _, text in ipairs({ stmt.text, string.lower(stmt.text) }) do
      for _, cut in ipairs(cut_names(stmt.tree, {})) do
        local from, to = string.find(text, cut, 1, true)
        if from and string.find(text, "^[%w_$\128-\255]", to + 1) then
          local full = string.match(text, "^[%w_$\128-\255]+", from)
          return string.format("name %s is %d bytes long: PostgreSQL truncates it to %s",
                               full, #full, cut)
        end
      end
    end
  end,
}

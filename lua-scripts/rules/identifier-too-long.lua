-- Catalog #59. PostgreSQL cuts names to 63 bytes with only a NOTICE: lookups by the full name miss.
-- The parse tree holds the names already cut, so the rule reads the statement's text.

-- 64 or more name characters in a row (unquoted names, and quoted ones without spaces).
local LONG_WORD = string.rep("[%w_$\128-\255]", 64) .. "[%w_$\128-\255]*"

-- The statement's text without comments, string literals and $$ bodies: long words there
-- are not names.
local function code_only(text)
  return (string.gsub(text, "%$([%w_]*)%$.-%$%1%$", " ")
                :gsub("/%*.-%*/", " ")
                :gsub("%-%-[^\n]*", " ")
                :gsub("'[^']*'", " "))
end

local function too_long(name)
  return string.format("name %s is %d bytes long: PostgreSQL keeps only its first 63 bytes", name, #name)
end

return {
  id = "identifier-too-long",
  severity = "P3", class = "STYLE",
  summary = "A name longer than 63 bytes is silently truncated",
  why = "PostgreSQL keeps only the first 63 bytes of a name and says so in a NOTICE that migration "
     .. "tools do not show. Apps and tools that look the object up by its full name (ORM schema "
     .. "checks, monitoring) miss it, and two long names with the same first 63 bytes collide: "
     .. "the second CREATE fails, or with IF NOT EXISTS silently does nothing.",
  instead = "Use a name of at most 63 bytes (shorten the prefix, abbreviate), and use that exact "
     .. "name everywhere.",
  default = "off", strict = "warn",
  override = true,
  check = function(stmt, session, ctx)
    if not stmt.ddl then return nil end
    local code = code_only(stmt.text)
    for quoted in string.gmatch(code, '"([^"]*)"') do   -- a quoted name may hold spaces
      if #quoted > 63 then return too_long(quoted) end
    end
    for word in string.gmatch(code, LONG_WORD) do
      if not string.find(word, "^%d") then return too_long(word) end   -- digits: a number
    end
  end,
}

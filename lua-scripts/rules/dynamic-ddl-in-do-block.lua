-- Catalog #36. DDL inside a DO block is invisible to every rule: only "DO" crosses the wire.

-- Words that start the statements the other rules exist for. A DO body is PL/pgSQL (or
-- another language) text, not parsed by ddlguard, so this looks for the words themselves.
local ddl_words = { "create", "alter", "drop", "truncate", "reindex", "cluster", "vacuum",
                    "refresh", "lock" }

local function body_of(tree)
  for _, arg in ipairs(tree.args) do
    if arg.defname == "as" and arg.arg then return arg.arg.sval end
  end
end

local function has_word(text, word)
  return string.find(text, "%f[%w_]" .. word .. "%f[^%w_]") ~= nil
end

return {
  id = "dynamic-ddl-in-do-block",
  severity = "P2", class = "TX",
  summary = "DDL inside a DO block bypasses every rule",
  why = "ddlguard (and any linter) sees only the DO statement; the ALTER, CREATE or DROP it runs "
     .. "inside, or builds at run time with EXECUTE, is never checked, so a table rewrite or an "
     .. "ACCESS EXCLUSIVE lock on a hot table goes through unexamined.",
  instead = "Write the DDL as plain statements (IF NOT EXISTS / IF EXISTS cover most of what DO "
     .. "blocks are used for). If a DO block is unavoidable, have it reviewed and try it on a "
     .. "staging copy first.",
  default = "warn", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    if stmt.tag ~= "DO" then return nil end
    local body = body_of(stmt.tree)
    if not body then return nil end
    -- Comments and string literals are not code: drop them before looking for words (a
    -- RAISE message may say "create"; EXECUTE 'CREATE …' is still caught by EXECUTE).
    body = string.lower(body):gsub("%-%-[^\n]*", " "):gsub("/%*.-%*/", " "):gsub("'[^']*'", " ")
    for _, word in ipairs(ddl_words) do
      if has_word(body, word) then
        return "this DO block runs " .. string.upper(word) .. " …: ddlguard sees only the DO, so "
            .. "no rule checks that statement"
      end
    end
    if has_word(body, "execute") then
      return "this DO block runs SQL built at run time (EXECUTE): ddlguard sees only the DO, so "
          .. "no rule checks it"
    end
  end,
}

-- Catalog #22. ALTER DOMAIN … ADD CONSTRAINT / VALIDATE CONSTRAINT / SET NOT NULL checks every
-- column of that type, in every table, while each table is locked against writes.
local action = { C = "ADD CONSTRAINT", V = "VALIDATE CONSTRAINT", O = "SET NOT NULL" }

return {
  id = "alter-domain-add-constraint",
  severity = "P1", class = "LOCK",
  summary = "ALTER DOMAIN … ADD CONSTRAINT blocks writes to every table that uses the domain",
  why = "ADD CONSTRAINT (without NOT VALID), VALIDATE CONSTRAINT and SET NOT NULL on a domain take "
     .. "SHARE on every table with a column of that domain and read those tables in full: INSERT, "
     .. "UPDATE and DELETE on all of them wait until the last scan ends. ADD CONSTRAINT … NOT VALID "
     .. "locks nothing, but the VALIDATE CONSTRAINT that must follow to check the existing rows "
     .. "blocks writes just the same: unlike ALTER TABLE, a domain has no online validation.",
  instead = "Avoid constraints on domains that are in use: put a CHECK (…) NOT VALID on each column "
     .. "(ALTER TABLE), then VALIDATE CONSTRAINT it in a later transaction.",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    if stmt.tag ~= "ALTER DOMAIN" then return nil end
    local what = action[stmt.tree.subtype]
    local d = stmt.objects[1]
    -- A domain created in this session is used only by columns added since.
    if not what or ctx.new(d) then return nil end
    if stmt.not_valid then
      return "ALTER DOMAIN " .. qualified(d) .. " ADD CONSTRAINT … NOT VALID leaves existing rows "
             .. "unchecked, and VALIDATE CONSTRAINT, the only way to check them, blocks writes to "
             .. "every table that uses the domain"
    end
    return "ALTER DOMAIN " .. qualified(d) .. " " .. what
           .. " blocks writes to every table that uses the domain while it checks them"
  end,
}

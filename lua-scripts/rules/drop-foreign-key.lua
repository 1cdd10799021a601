-- Catalog #29. Dropping a foreign key locks the table it references, often a hot one.
--
-- The text does not say what kind of constraint DROP CONSTRAINT drops; the catalog does.
-- This rule goes by the names PostgreSQL and the common tools give foreign keys:
-- orders_user_id_fkey (PostgreSQL), fk_rails_… (Rails), …_fk_… (Django), fk_… / …_fk.
local function looks_like_fk(name)
  name = string.lower(name)
  return name:find("_fkey$") or name:find("^fk_") or name:find("_fk$") or name:find("_fk_")
end

return {
  id = "drop-foreign-key",
  severity = "P2", class = "LOCK",
  summary = "DROP CONSTRAINT of a foreign key locks the referenced table too and stops enforcing the reference",
  why = "Dropping a foreign key removes its triggers from both tables, so it takes ACCESS EXCLUSIVE "
     .. "on the referencing table and on the referenced one, which is often a hot table such as "
     .. "users. The drop is instant, but the lock request queues behind every running query on "
     .. "either table and blocks every query behind it. Afterwards nothing stops rows that point "
     .. "nowhere.",
  instead = "Make sure nothing relies on the key any more, then drop it off-peak with a short "
     .. "lock_timeout (e.g. SET lock_timeout = '2s') and retry if it times out.",
  default = "warn", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    if stmt.tag ~= "ALTER TABLE" then return nil end
    local t = stmt.objects[1]
    -- No new-table exemption: the lock that hurts is on the referenced table, which is
    -- not the table being altered and usually existed long before this migration.
    for _, c in ipairs(stmt.subcommands) do
      if c.name == "DROP CONSTRAINT" and c.column and looks_like_fk(c.column) then
        return "DROP CONSTRAINT " .. c.column .. " on " .. qualified(t) .. ": a foreign key by its "
            .. "name, so it also takes ACCESS EXCLUSIVE on the table it references, and the "
            .. "reference is no longer enforced"
      end
    end
  end,
}

-- Catalog #16. VALIDATE CONSTRAINT in the transaction that already locked the table (ADD …
-- NOT VALID, any other ALTER TABLE) scans the table under that earlier, stronger lock.
--
-- session.statements lists the transaction's earlier statements (tag, text, strict_id) but not
-- their locks, so the rule remembers, by strict_id, which tables each statement it sees locks
-- against writes (SHARE or stronger). strict_id depends only on the statement, never on the
-- session, so this is right whichever session ran it first.
local locked = {}
local remembered = 0

local function remember(stmt)
  local names = {}
  for _, o in ipairs(stmt.objects) do
    if o.lock_level >= LOCK.SHARE and not o.created then names[qualified(o)] = true end
  end
  if next(names) then
    if remembered > 10000 then locked, remembered = {}, 0 end
    remembered = remembered + 1
    locked[stmt.strict_id] = names
  end
end

-- The constraint this ALTER TABLE validates, if it validates one. (ALTER DOMAIN … VALIDATE
-- blocks writes whatever the transaction: that is alter-domain-add-constraint's business.)
local function validated(stmt)
  for _, c in ipairs(stmt.subcommands) do
    if c.name == "VALIDATE CONSTRAINT" then return c.column end
  end
end

return {
  id = "validate-in-same-transaction",
  severity = "P0", class = "LOCK",
  summary = "VALIDATE CONSTRAINT in the same transaction that locked the table defeats NOT VALID",
  why = "VALIDATE CONSTRAINT alone takes SHARE UPDATE EXCLUSIVE, so reads and writes go on during "
     .. "its scan. Run in the transaction that added the constraint NOT VALID (or that altered the "
     .. "table some other way), the scan runs while the transaction still holds that ACCESS EXCLUSIVE "
     .. "or SHARE ROW EXCLUSIVE lock, exactly as if NOT VALID had not been used.",
  instead = "COMMIT after ADD … NOT VALID and run VALIDATE CONSTRAINT in its own transaction, or in "
     .. "the next migration (which most tools run in a transaction of its own).",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    remember(stmt)
    local name = validated(stmt)
    if not name then return nil end
    local o = stmt.objects[1]
    -- A table created in this session is new: its validation is instant.
    if ctx.new(o) or ctx.small(o) then return nil end
    local what = "VALIDATE CONSTRAINT " .. name .. " on " .. qualified(o)
    if stmt.tag == "ALTER TABLE" and stmt.lock_level >= LOCK.SHARE then
      return what .. " scans under the " .. stmt.lock .. " lock its own ALTER TABLE takes"
    end
    if not ctx.in_transaction then return nil end
    for i, s in ipairs(session.statements) do
      if locked[s.strict_id] and locked[s.strict_id][qualified(o)] then
        return what .. " scans under the lock statement " .. i .. " of this transaction (" .. s.tag
               .. ") took on it: nothing can write to it until the scan ends"
      end
    end
  end,
}

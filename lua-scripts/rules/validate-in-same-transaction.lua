-- Catalog #16. VALIDATE CONSTRAINT in the transaction that already locked the table (ADD …
-- NOT VALID, any other ALTER TABLE) scans the table under that earlier, stronger lock.
--
-- session.statements lists the transaction's earlier statements (tag, text, strict_id) but not
-- their locks, so the rule remembers, by strict_id, which tables each statement it sees locks
-- against writes (SHARE or stronger), as a string: "|orders|app.accounts|".
-- strict_id depends only on the statement, never on the session, so this is right whichever
-- session ran it first. The memory is bounded: the newest 500 statements and the 500 before.
local new, old, count = {}, {}, 0

local function remember(stmt)
  local names = ""
  for _, o in ipairs(stmt.objects) do
    if o.lock_level >= LOCK.SHARE and not o.created then names = names .. "|" .. qualified(o) end
  end
  if names == "" then return end
  if new[stmt.strict_id] == nil then count = count + 1 end
  new[stmt.strict_id] = names .. "|"
  if count >= 500 then new, old, count = {}, new, 0 end
end

local function locked(strict_id, name)
  local names = new[strict_id] or old[strict_id]
  return names ~= nil and string.find(names, "|" .. name .. "|", 1, true) ~= nil
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
    -- The earlier statements of this transaction (explicit, or the implicit one of a
    -- multi-statement Query); none in autocommit.
    for i, s in ipairs(session.statements) do
      if locked(s.strict_id, qualified(o)) then
        return what .. " scans under the lock statement " .. i .. " of this transaction (" .. s.tag
               .. ") took on it: nothing can write to it until the scan ends"
      end
    end
  end,
}

-- Catalog #50. A value added with ALTER TYPE … ADD VALUE cannot be used before it is committed.
-- The earlier statements of the transaction are known only by their text, so the value is
-- read from it, and a "use" is the value's quoted literal in a later statement's text.

-- Looking back over every earlier statement for every statement would make a long
-- transaction quadratic: look at the last LOOK_BACK guarded statements only.
local LOOK_BACK = 200

-- The labels added by the latest ALTER TYPE … ADD VALUE statements of this transaction.
local function added_values(session)
  local values, n = {}, #session.statements
  for i = n, math.max(1, n - LOOK_BACK + 1), -1 do
    local s = session.statements[i]
    local from = s.tag == "ALTER TYPE" and string.find(string.lower(s.text), "add%s+value%s")
    if from then
      values[#values + 1] = string.match(s.text, "'(.-)'", from)  -- the first literal after it
    end
  end
  return values
end

return {
  id = "enum-value-used-in-same-transaction",
  severity = "P1", class = "TX",
  summary = "A new enum value is used in the same transaction that added it",
  why = "PostgreSQL refuses to use an enum value before the transaction that added it commits "
     .. "(ERROR: unsafe use of new value). The migration fails every time it runs in one "
     .. "transaction, as migration tools run each file, and what came before it rolls back.",
  instead = "Add the value in its own transaction (or its own migration), commit, then use it: "
     .. "COMMIT after ALTER TYPE … ADD VALUE, or move the statements that use it to the next migration.",
  default = "deny", strict = "deny",
  override = true,
  dml = true,   -- UPDATE, INSERT and DELETE reach the rule too: they are the usual uses
  check = function(stmt, session, ctx)
    -- ADD VALUE … AFTER a new value and RENAME VALUE of one are allowed.
    -- A statement without a quoted literal cannot use a value.
    if stmt.node == "AlterEnumStmt" or not string.find(stmt.text, "'", 1, true) then return nil end
    for _, v in ipairs(added_values(session)) do
      if string.find(stmt.text, "'" .. v .. "'", 1, true) then
        return "enum value '" .. v .. "' was added in this transaction: " .. stmt.tag
            .. " cannot use it before COMMIT"
      end
    end
  end,
}

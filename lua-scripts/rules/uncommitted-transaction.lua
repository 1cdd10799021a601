-- Catalog #66. A migration that ends inside BEGIN … without COMMIT applies nothing, or
-- leaves its locks held until the connection closes.
return {
  id = "uncommitted-transaction",
  severity = "P1", class = "TX",
  summary = "the migration ends with a transaction still open",
  why = "Whatever ran after BEGIN is rolled back when the session ends, so the migration silently "
     .. "applies nothing; until then every lock it took stays held and blocks the application.",
  instead = "End every BEGIN with COMMIT (or let the migration tool manage the transaction).",
  default = "deny", strict = "deny",
  override = false,
  check = function(stmt, session, ctx) return nil end,
  at_end = function(session, ctx)
    if session.tx_status ~= "idle" then
      return string.format("the migration ends inside a transaction (%d schema changes in it were never committed)",
                           #session.statements)
    end
  end,
}

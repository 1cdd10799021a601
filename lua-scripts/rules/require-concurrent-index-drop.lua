-- Catalog #4. DROP INDEX without CONCURRENTLY takes ACCESS EXCLUSIVE on the index's table.
return {
  id = "require-concurrent-index-drop",
  severity = "P2", class = "LOCK",
  summary = "DROP INDEX without CONCURRENTLY locks the table against reads and writes",
  why = "A plain DROP INDEX takes ACCESS EXCLUSIVE on the index and on its table. The drop "
     .. "itself is instant, but the lock request waits behind every running query on the table "
     .. "and every later query, SELECT included, queues behind it.",
  instead = "DROP INDEX CONCURRENTLY IF EXISTS …, one index per statement, without CASCADE, "
     .. "outside a transaction block.",
  default = "warn", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    if stmt.tag ~= "DROP INDEX" or stmt.concurrently then return nil end
    for _, o in ipairs(stmt.objects) do
      -- An index created earlier in this session is on a new table: nobody waits for it.
      if not ctx.new(o) then
        local msg = "DROP INDEX " .. qualified(o) .. " takes ACCESS EXCLUSIVE on its table"
        if #stmt.objects > 1 or stmt.cascade then
          return { message = msg, hint = "DROP INDEX CONCURRENTLY drops one index and has no "
                   .. "CASCADE: write one DROP INDEX CONCURRENTLY IF EXISTS per index, outside "
                   .. "a transaction block." }
        end
        return msg
      end
    end
  end,
}

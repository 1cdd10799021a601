-- Catalog #1. A DDL that waits for its lock queues every later query on the table behind it.
return {
  id = "require-lock-timeout",
  severity = "P0", class = "SESSION",
  summary = "every statement that takes SHARE UPDATE EXCLUSIVE or stronger runs with a lock_timeout",
  why = "A statement waiting for a strong lock (behind a long query or an idle-in-transaction session) "
     .. "sits in the lock queue, and every later query on the table waits behind it: an \"instant\" "
     .. "ALTER TABLE becomes an outage for as long as it waits.",
  instead = "ddlguard sets lock_timeout (2 s by default, never loosening a tighter one of the client's) "
     .. "and retries the statement with backoff when it times out.",
  default = "deny", strict = "deny",   -- any level but off applies the timeout
  override = false,
  check = function(stmt, session, ctx)
    if stmt.lock_level < LOCK.SHARE_UPDATE_EXCLUSIVE then return nil end
    for _, o in ipairs(stmt.objects) do
      if o.lock_level >= LOCK.SHARE_UPDATE_EXCLUSIVE and not ctx.new(o) then
        return { set = { lock_timeout = ctx.lock_timeout } }
      end
    end
  end,
}

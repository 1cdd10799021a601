-- Catalog #2. A runaway rewrite or scan holds its lock with no bound.
return {
  id = "require-statement-timeout",
  severity = "P1", class = "SESSION",
  summary = "statements that hold strong locks run with a statement_timeout",
  why = "A rewrite or validation scan that takes far longer than planned holds its ACCESS EXCLUSIVE "
     .. "or SHARE lock the whole time; nothing bounds the outage.",
  instead = "ddlguard sets statement_timeout (30 min by default, never loosening a tighter one); "
     .. "CONCURRENTLY builds are exempt because they block nobody and may take long.",
  default = "off", strict = "deny",   -- opt-in: migrations legitimately run long
  override = false,
  check = function(stmt, session, ctx)
    if stmt.concurrently or stmt.lock_level < LOCK.SHARE then return nil end
    for _, o in ipairs(stmt.objects) do
      if o.lock_level >= LOCK.SHARE and not ctx.new(o) then
        return { set = { statement_timeout = ctx.statement_timeout } }
      end
    end
  end,
}

-- Catalog #30. LOCK TABLE in a mode that blocks writes holds it until the transaction ends.
local blocks = {
  [LOCK.SHARE] = "blocks INSERT, UPDATE and DELETE on %s",
  [LOCK.SHARE_ROW_EXCLUSIVE] = "blocks INSERT, UPDATE and DELETE on %s",
  [LOCK.EXCLUSIVE] = "blocks every query on %s except plain SELECT",
  [LOCK.ACCESS_EXCLUSIVE] = "blocks every query on %s, SELECT included,",
}

return {
  id = "explicit-lock-table",
  severity = "P1", class = "LOCK",
  summary = "LOCK TABLE in SHARE mode or stronger blocks traffic for the rest of the transaction",
  why = "LOCK TABLE in SHARE, SHARE ROW EXCLUSIVE, EXCLUSIVE or ACCESS EXCLUSIVE mode (the default) "
     .. "blocks writes, or everything, on the table from the moment it is granted until COMMIT or "
     .. "ROLLBACK, however long the rest of the migration takes. While it waits to be granted, "
     .. "every query that arrives after it queues behind it.",
  instead = "Rely on the locks the statements take themselves. If an explicit lock is truly "
     .. "needed, add NOWAIT (or set a short lock_timeout) and keep the transaction short.",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    if stmt.tag ~= "LOCK TABLE" or stmt.tree.nowait then return nil end
    for _, o in ipairs(stmt.objects) do
      -- Nobody else uses a table created earlier in this session yet.
      -- A migration tool locking its own history table is its mutex, not the app's table.
      -- Sqitch locks its registry's "changes" unqualified, under SET search_path = sqitch
      -- (sent with a bound parameter ddlguard does not track): EXCLUSIVE on "changes" is it.
      local tool_mutex = o.bookkeeping
          or (o.schema == nil and o.name == "changes" and o.lock_level == LOCK.EXCLUSIVE)
      if blocks[o.lock_level] and not ctx.new(o) and not tool_mutex then
        return "LOCK TABLE " .. qualified(o) .. " IN " .. o.lock .. " MODE "
            .. string.format(blocks[o.lock_level], qualified(o)) .. " until the transaction ends"
      end
    end
  end,
}

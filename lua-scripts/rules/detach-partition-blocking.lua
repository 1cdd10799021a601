-- Catalog #26. DETACH PARTITION without CONCURRENTLY takes ACCESS EXCLUSIVE on the parent.
return {
  id = "detach-partition-blocking",
  severity = "P2", class = "LOCK",
  summary = "DETACH PARTITION without CONCURRENTLY blocks every query on the partitioned table",
  why = "A plain DETACH PARTITION takes ACCESS EXCLUSIVE on the partitioned table and on the "
     .. "partition. The detach itself is instant, but it waits behind every running query on the "
     .. "table, and every query that arrives after it waits behind it: reads included.",
  instead = "ALTER TABLE … DETACH PARTITION … CONCURRENTLY (PostgreSQL 14+), outside a transaction "
     .. "block; not possible while the table has a DEFAULT partition. If it is interrupted, finish "
     .. "it with DETACH PARTITION … FINALIZE.",
  default = "warn", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    if stmt.tag ~= "ALTER TABLE" then return nil end
    local parent, part = stmt.objects[1], stmt.objects[2]
    -- Nobody queries a partitioned table created earlier in this session yet.
    if not parent or ctx.new(parent) then return nil end
    for _, c in ipairs(stmt.subcommands) do
      if c.name == "DETACH PARTITION" then
        return "DETACH PARTITION " .. (part and qualified(part) or c.column or "?") .. " locks "
            .. qualified(parent) .. ": every query on the partitioned table waits" .. ctx.lock_note(parent)
      end
    end
  end,
}

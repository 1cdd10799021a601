-- Catalog #3. CREATE INDEX without CONCURRENTLY holds SHARE on the table for the whole build.
return {
  id = "require-concurrent-index",
  severity = "P1", class = "LOCK",
  summary = "CREATE INDEX without CONCURRENTLY blocks writes for the whole build",
  why = "A plain CREATE INDEX takes SHARE on the table and scans and sorts all of it: every "
     .. "INSERT, UPDATE and DELETE on the table waits until the build ends, minutes to hours on a big table.",
  instead = "CREATE INDEX CONCURRENTLY IF NOT EXISTS …, outside a transaction block; if it fails, "
     .. "drop the INVALID index it leaves and run it again.",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    if stmt.tag ~= "CREATE INDEX" or stmt.concurrently then return nil end
    local t = stmt.objects[1]
    -- The table the index is on is the first object; an index on a table created earlier
    -- in this session is on an empty table, and a small table builds in no time.
    if not t or ctx.new(t) or ctx.small(t) then return nil end
    return "CREATE INDEX on " .. qualified(t) .. " blocks writes until the build ends" .. ctx.lock_note(t)
  end,
}

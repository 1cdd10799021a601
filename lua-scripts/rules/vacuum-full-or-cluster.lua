-- Catalog #24. VACUUM FULL and CLUSTER copy the whole table while it is locked against everything.
return {
  id = "vacuum-full-or-cluster",
  severity = "P0", class = "REWRITE",
  summary = "VACUUM FULL / CLUSTER rewrites the table while it blocks reads and writes",
  why = "VACUUM FULL and CLUSTER write a new copy of the table and rebuild all its indexes under "
     .. "ACCESS EXCLUSIVE: no reads or writes until the copy is done, and it needs disk space for a "
     .. "second copy. Without a table name, VACUUM FULL does this to every table of the database and "
     .. "CLUSTER to every table clustered before.",
  instead = "pg_repack or pg_squeeze, which rebuild the table online and lock it only briefly at the "
     .. "end; PostgreSQL 19 adds REPACK (CONCURRENTLY). A plain VACUUM does not block.",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    local what
    if stmt.tag == "CLUSTER" then
      what = "CLUSTER"
    elseif stmt.tag == "VACUUM" and stmt.lock_level == LOCK.ACCESS_EXCLUSIVE then
      what = "VACUUM FULL"   -- VACUUM (FULL false) and plain VACUUM take SHARE UPDATE EXCLUSIVE
    else
      return nil
    end
    if #stmt.objects == 0 then
      return what .. " with no table rewrites every " .. (what == "CLUSTER" and "clustered " or "")
             .. "table of the database, each locked in turn"
    end
    for _, o in ipairs(stmt.objects) do
      -- A table created in this session is empty; a small one is copied in no time.
      if not (ctx.new(o) or ctx.small(o)) then
        return what .. " " .. qualified(o) .. " rewrites the table while it blocks reads and writes"
               .. ctx.lock_note(o)
      end
    end
  end,
}

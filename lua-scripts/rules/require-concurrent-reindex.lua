-- Catalog #5. REINDEX without CONCURRENTLY blocks writes, and in practice reads, for the rebuild.
local what = {
  REINDEX_OBJECT_INDEX = "INDEX", REINDEX_OBJECT_TABLE = "TABLE", REINDEX_OBJECT_SCHEMA = "SCHEMA",
  REINDEX_OBJECT_DATABASE = "DATABASE", REINDEX_OBJECT_SYSTEM = "SYSTEM",
}

return {
  id = "require-concurrent-reindex",
  severity = "P0", class = "LOCK",
  summary = "REINDEX without CONCURRENTLY blocks the table for the whole rebuild",
  why = "A plain REINDEX takes SHARE on the table, so every INSERT, UPDATE and DELETE waits, "
     .. "and ACCESS EXCLUSIVE on each index it rebuilds; the planner locks every index of a table "
     .. "it plans a query on, so SELECTs wait too, for as long as the rebuild takes.",
  instead = "REINDEX INDEX|TABLE CONCURRENTLY … (PostgreSQL 12+; REINDEX (CONCURRENTLY) … from 14), "
     .. "outside a transaction block; if it fails, drop the leftover *_ccnew index and run it again.",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    if stmt.tag ~= "REINDEX" or stmt.concurrently then return nil end
    local kind = what[stmt.tree.kind] or "?"
    local o = stmt.objects[1]
    if kind == "SYSTEM" then
      return { message = "REINDEX SYSTEM rebuilds the system catalogs under exclusive locks",
               hint = "System catalogs cannot be reindexed concurrently: run it in a maintenance "
                      .. "window." }
    end
    -- A table or index created in this session is new and empty; a small one rebuilds at once.
    if o and (kind == "INDEX" or kind == "TABLE") then
      if ctx.new(o) or ctx.small(o) then return nil end
      return "REINDEX " .. kind .. " " .. qualified(o) .. " blocks the table until the rebuild ends"
             .. ctx.lock_note(o)
    end
    return "REINDEX " .. kind .. " " .. (o and qualified(o) or "")
           .. " rebuilds every index in it, blocking each table in turn"
  end,
}

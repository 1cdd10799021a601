-- Catalog #28. SET TABLESPACE, SET LOGGED/UNLOGGED and SET ACCESS METHOD copy the whole table.
local copies = {
  ["SET TABLESPACE"] = "copies it file by file to the new tablespace",
  ["SET LOGGED"] = "rewrites it and writes all of it to the WAL",
  ["SET UNLOGGED"] = "rewrites it",
  ["SET ACCESS METHOD"] = "rewrites it",
}

return {
  id = "table-rewrite-storage",
  severity = "P0", class = "REWRITE",
  summary = "SET TABLESPACE / SET LOGGED / SET UNLOGGED / SET ACCESS METHOD rewrite the table under ACCESS EXCLUSIVE",
  why = "These forms of ALTER TABLE copy the whole table (and rebuild or copy its indexes) while "
     .. "holding ACCESS EXCLUSIVE: every read and write of the table waits until the copy ends. SET "
     .. "LOGGED also writes the whole table to the WAL, which replicas must replay. SET ACCESS METHOD "
     .. "exists since PostgreSQL 15.",
  instead = "Move or convert a big table without the long lock: pg_repack (--tablespace moves it "
     .. "online), or a new table filled by a batched copy or logical replication, then a swap.",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    if stmt.node == "AlterTableMoveAllStmt" then
      return "ALTER … ALL IN TABLESPACE … SET TABLESPACE copies every relation it moves, each under "
          .. "ACCESS EXCLUSIVE"
    end
    if stmt.node ~= "AlterTableStmt" then return nil end
    local t = stmt.objects[1]
    -- A new table is empty and a small one copies in no time.
    if not t or ctx.new(t) or ctx.small(t) then return nil end
    for _, c in ipairs(stmt.subcommands) do
      if copies[c.name] then
        return c.name .. " on " .. qualified(t) .. " " .. copies[c.name] .. " while every read and "
            .. "write waits" .. ctx.lock_note(t)
      end
    end
  end,
}

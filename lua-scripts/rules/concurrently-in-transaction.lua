-- Catalog #6. CONCURRENTLY (and VACUUM, CREATE DATABASE …) cannot run inside a transaction block.
return {
  id = "concurrently-in-transaction",
  severity = "P1", class = "TX",
  summary = "a statement that cannot run inside a transaction block is inside one",
  why = "PostgreSQL refuses CREATE/DROP INDEX CONCURRENTLY, REINDEX CONCURRENTLY, DETACH PARTITION "
     .. "CONCURRENTLY (and VACUUM, CREATE DATABASE …) inside BEGIN … COMMIT, including the "
     .. "transaction a migration tool opens around each file: the migration fails there, and a "
     .. "tool that does not wrap files leaves the statements before it applied.",
  instead = "Put the statement in a migration of its own that runs outside a transaction "
     .. "(Rails disable_ddl_transaction!, Django atomic = False, Alembic autocommit_block(), "
     .. "Atlas -- atlas:txmode none, Flyway mixed), or COMMIT before it.",
  default = "deny", strict = "deny",
  -- PostgreSQL itself rejects the statement: lifting the deny only moves the error.
  override = false,
  check = function(stmt, session, ctx)
    if stmt.in_transaction_ok or not ctx.in_transaction then return nil end
    local what = stmt.tag .. (stmt.concurrently and " CONCURRENTLY" or "")
    local o = stmt.objects[1]
    return what .. (o and (" on " .. qualified(o)) or "")
           .. " cannot run inside a transaction block: the migration fails here"
  end,
}

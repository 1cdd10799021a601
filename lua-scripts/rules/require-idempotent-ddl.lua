-- Catalog #67 (opt-in). Outside a transaction, a migration that fails half way must be re-runnable.

-- CREATE statements that accept IF NOT EXISTS, and those that accept OR REPLACE.
local if_not_exists = { CreateStmt = true, IndexStmt = true, CreateSeqStmt = true,
                        CreateSchemaStmt = true, CreateExtensionStmt = true, CreateTableAsStmt = true }
local or_replace = { ViewStmt = true, CreateFunctionStmt = true }
-- ALTER TABLE sub-commands that accept IF [NOT] EXISTS.
local alter_missing_ok = { AT_AddColumn = "ADD COLUMN IF NOT EXISTS",
                           AT_DropColumn = "DROP COLUMN IF EXISTS",
                           AT_DropConstraint = "DROP CONSTRAINT IF EXISTS" }

return {
  id = "require-idempotent-ddl",
  severity = "P3", class = "TX",
  summary = "DDL outside a transaction that cannot be run a second time",
  why = "Outside a transaction block each statement commits on its own, so a migration that fails "
     .. "half way stays half applied, and running it again stops at the first statement that "
     .. "already took effect. A failed CREATE INDEX CONCURRENTLY leaves an INVALID index under "
     .. "its name (or under a generated name, if it had none, which a re-run duplicates).",
  instead = "Write CREATE … IF NOT EXISTS, DROP … IF EXISTS, CREATE OR REPLACE, ADD COLUMN IF NOT "
     .. "EXISTS, DROP COLUMN IF EXISTS; name every CREATE INDEX CONCURRENTLY, and before re-running "
     .. "one drop the index if pg_index.indisvalid is false.",
  default = "off", strict = "warn",
  override = true,
  check = function(stmt, session, ctx)
    if ctx.in_transaction or not stmt.ddl then return nil end
    local t, what = stmt.tree, nil   -- what: the clause the statement lacks
    if stmt.node == "IndexStmt" and stmt.concurrently and not t.idxname then
      return "CREATE INDEX CONCURRENTLY without a name: a failed run leaves an INVALID index that a "
          .. "re-run does not see"
    end
    if if_not_exists[stmt.node] and not stmt.if_not_exists then
      what = stmt.tag .. " without IF NOT EXISTS"
    elseif or_replace[stmt.node] and not t.replace then
      what = stmt.tag .. " without OR REPLACE"
    elseif stmt.node == "DropStmt" and not stmt.if_exists then
      what = stmt.tag .. " without IF EXISTS"
    end
    for _, c in ipairs(stmt.node == "AlterTableStmt" and t.cmds or {}) do
      if alter_missing_ok[c.subtype] and not c.missing_ok then
        what = "ALTER TABLE without " .. alter_missing_ok[c.subtype]
      end
    end
    if what then
      return what .. " outside a transaction: running the migration again fails here"
    end
  end,
}

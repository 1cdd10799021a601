-- Catalog #32. A long statement in a transaction that already holds a strong lock.
--
-- session.statements lists the DDL run so far in this transaction, but not the locks each
-- took. This rule sees every statement too, so it notes the strong locks each one takes,
-- by its strict_id (the same statement always takes the same locks), and looks them up
-- for the statements of the current transaction.
local locks_of, noted = {}, 0

-- Relations that existed before the statement and that it locks SHARE or stronger: from
-- then on to COMMIT, writes (or all queries) on them wait.
local function note(stmt)
  if locks_of[stmt.strict_id] then return end
  if noted >= 5000 then locks_of, noted = {}, 0 end   -- keep the memory bounded
  local held = {}
  for _, o in ipairs(stmt.objects) do
    if not o.created and o.lock_level >= LOCK.SHARE then
      held[#held + 1] = { name = qualified(o), lock = o.lock, level = o.lock_level }
    end
  end
  locks_of[stmt.strict_id] = held
  noted = noted + 1
end

-- The migration tools' own bookkeeping tables: one row each.
local tool_tables = {
  alembic_version = true, schema_migrations = true, flyway_schema_history = true,
  django_migrations = true, goose_db_version = true, databasechangelog = true,
  knex_migrations = true, ar_internal_metadata = true, __diesel_schema_migrations = true,
}

-- Does the WHERE clause pin rows (col = constant somewhere in a top-level AND)?
local function pinned(e)
  if not e then return false end
  if e.node_type == "BoolExpr" and e.boolop == "AND_EXPR" then
    for _, arg in ipairs(e.args) do
      if pinned(arg) then return true end
    end
    return false
  end
  local value = e.node_type == "A_Expr" and e.kind == "AEXPR_OP" and e.name[#e.name].sval == "="
      and e.rexpr
  return value and (value.node_type == "A_Const" or value.node_type == "ParamRef") or false
end

-- What makes this statement long, or nil when it is quick.
local function long_work(stmt, ctx)
  if stmt.concurrently then return nil end          -- cannot run in a transaction block anyway
  for _, c in ipairs(stmt.subcommands) do
    if c.name == "VALIDATE CONSTRAINT" then return nil end   -- validate-in-same-transaction's
  end
  if stmt.tag == "REFRESH MATERIALIZED VIEW" then
    return "REFRESH MATERIALIZED VIEW " .. qualified(stmt.objects[1])
  end
  local dml = stmt.tag == "UPDATE" or stmt.tag == "DELETE" or stmt.tag == "MERGE"
  if stmt.tag == "INSERT" then
    local q = stmt.tree.select_stmt
    dml = q ~= nil and #q.from_clause > 0            -- INSERT … SELECT … FROM, not VALUES
  end
  if dml and pinned(stmt.tree.where_clause) then return nil end
  for _, o in ipairs(stmt.objects) do
    local big = not ctx.new(o) and not ctx.small(o) and not tool_tables[o.name]
    if big and dml then
      return stmt.tag .. " on " .. qualified(o)
    elseif big and o.rewrite and stmt.tag ~= "TRUNCATE TABLE" then
      return stmt.tag .. " on " .. qualified(o) .. " (it rewrites it)"
    elseif big and o.scan then
      return stmt.tag .. " on " .. qualified(o) .. " (it reads all of it)"
    end
  end
end

return {
  id = "long-statement-under-access-exclusive",
  severity = "P0", class = "LOCK",
  summary = "A long statement runs in a transaction that already holds a strong lock on another table",
  why = "Locks are held until COMMIT. Once a statement of the transaction has taken ACCESS "
     .. "EXCLUSIVE (or SHARE, SHARE ROW EXCLUSIVE, EXCLUSIVE) on a table, every later statement "
     .. "of the transaction extends that lock: an index build, a backfill, a REFRESH or a table "
     .. "rewrite that follows turns an instant catalog change into an outage of the locked table "
     .. "for as long as it runs.",
  instead = "COMMIT right after the statement that takes the strong lock, and run the long work "
     .. "in its own transaction (index builds CONCURRENTLY, backfills in batches). Migration "
     .. "tools that wrap a file in one transaction: split the file.",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    note(stmt)
    if not ctx.in_transaction then return nil end
    local work = long_work(stmt, ctx)
    if not work then return nil end
    -- A lock on a table this statement locks at least as strongly itself is this
    -- statement's own problem, for the rule about its shape.
    local own = {}
    for _, o in ipairs(stmt.objects) do own[qualified(o)] = o.lock_level end
    for i = 1, #session.statements do
      for _, h in ipairs(locks_of[session.statements[i].strict_id] or {}) do
        if not created_in_session(session, h.name) and (own[h.name] or 0) < h.level then
          return work .. " runs while this transaction holds " .. h.lock .. " on " .. h.name
              .. " (taken by an earlier " .. session.statements[i].tag .. "): " .. h.name
              .. " stays blocked until COMMIT"
        end
      end
    end
  end,
}

-- Catalog #33. One UPDATE or DELETE over a whole big table is one long transaction.
--
-- Plain UPDATE and DELETE reach the rules only when some policy file sets see_dml = true;
-- without it this rule sees only those ddlguard passes on anyway (one that calls a function
-- in a sub-select, for instance).

-- A column that can carry a key range: id, …_id, or ctid.
local function key_column(n)
  if not n or n.node_type ~= "ColumnRef" then return false end
  local last = n.fields[#n.fields]
  local name = last and last.sval
  return name ~= nil and (name == "id" or name == "ctid" or string.find(name, "_id$") ~= nil)
end

local function constant(n)
  return n ~= nil and (n.node_type == "A_Const" or n.node_type == "ParamRef"
    or (n.node_type == "TypeCast" and constant(n.arg)))
end

-- Is there a LIMIT anywhere under n (WHERE id IN (SELECT id … LIMIT 1000), a CTE batch)?
local function has_limit(n, depth)
  if type(n) ~= "userdata" or depth > 40 then return false end
  if n.node_type == "SelectStmt" and n.limit_count then return true end
  for _, v in pairs(n) do
    if type(v) == "userdata" and has_limit(v, depth + 1) then return true end
  end
  return false
end

-- The migration tools' own bookkeeping tables: one row each, updated in every migration.
local tool_tables = {
  alembic_version = true, schema_migrations = true, flyway_schema_history = true,
  django_migrations = true, goose_db_version = true, databasechangelog = true,
  databasechangeloglock = true, knex_migrations = true, knex_migrations_lock = true,
  ar_internal_metadata = true, __diesel_schema_migrations = true,
}

local range_ops = { ["<"] = true, ["<="] = true, [">"] = true, [">="] = true }

-- Does this WHERE condition bound the rows to a batch?
local function bounded(e)
  if not e then return false end
  if e.node_type == "CurrentOfExpr" then return true end   -- WHERE CURRENT OF cursor: one row
  if e.node_type == "BoolExpr" and e.boolop == "AND_EXPR" then
    for _, arg in ipairs(e.args) do
      if bounded(arg) then return true end
    end
    return false
  end
  if e.node_type == "A_Expr" then
    local op = e.name[#e.name] and e.name[#e.name].sval
    if e.kind == "AEXPR_BETWEEN" or e.kind == "AEXPR_BETWEEN_SYM" then
      return key_column(e.lexpr)                          -- id BETWEEN 1 AND 10000
    elseif e.kind == "AEXPR_OP" and range_ops[op] then
      return key_column(e.lexpr) or key_column(e.rexpr)   -- id > 5000 AND id <= 10000
    elseif e.kind == "AEXPR_OP" and op == "=" then
      return (key_column(e.lexpr) and constant(e.rexpr))  -- id = 42
          or (key_column(e.rexpr) and constant(e.lexpr))
    elseif (e.kind == "AEXPR_IN" or e.kind == "AEXPR_OP_ANY") and op == "=" then
      return key_column(e.lexpr) or has_limit(e.rexpr, 0) -- id IN (1, 2, 3), id = ANY($1)
    end
    return false
  end
  if e.node_type == "SubLink" and e.sub_link_type == "ANY_SUBLINK" then
    return has_limit(e.subselect, 0)                      -- id IN (SELECT … LIMIT 1000)
  end
  return false
end

return {
  id = "unbatched-backfill",
  severity = "P1", class = "LOCK",
  summary = "UPDATE or DELETE of a whole big table in one statement",
  why = "A single UPDATE or DELETE with no key range or LIMIT touches every matching row in one "
     .. "transaction: it holds row locks on all of them until it ends (concurrent updates of those "
     .. "rows wait), bloats the table, and produces a burst of WAL that replicas lag behind. "
     .. "Inside a DDL transaction it also keeps that DDL's ACCESS EXCLUSIVE lock for its whole "
     .. "run.",
  instead = "Backfill in batches by primary-key range (WHERE id >= $1 AND id < $1 + 10000, or "
     .. "WHERE id IN (SELECT id … LIMIT 10000)), each batch in its own short transaction, with a "
     .. "pause between batches, outside the DDL transaction.",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    if stmt.tag ~= "UPDATE" and stmt.tag ~= "DELETE" then return nil end
    local tree = stmt.tree
    local rel = tree.relation
    local t
    for _, o in ipairs(stmt.objects) do
      if o.name == rel.relname and o.schema == rel.schemaname then t = o break end
    end
    -- A table created earlier in this session, or a small one, is done in no time.
    if not t or ctx.new(t) or ctx.small(t) or tool_tables[t.name] then return nil end
    if bounded(tree.where_clause) or has_limit(tree.with_clause, 0) then return nil end
    return stmt.tag .. " of " .. qualified(t) .. " changes every matching row in one transaction "
        .. "(no key range or LIMIT bounds it)" .. ctx.lock_note(t)
  end,
}

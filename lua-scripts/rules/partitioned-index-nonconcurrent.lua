-- Catalog #7 (ours). An index on a partitioned table is built on every partition under SHARE,
-- and CONCURRENTLY is refused outright.
--
-- Whether a table is partitioned is not in the statement's text. The rule asks the live facts
-- (relkind "p") and, without them, remembers the tables it has seen created with PARTITION BY
-- since ddlguard started (names as written, per environment and database).
local partitioned = {}
local remembered = 0

local function key(session, name)
  return session.environment .. "/" .. session.database .. "/" .. name
end

local function learn(stmt, session)
  if stmt.node == "CreateStmt" then
    local t = stmt.tree
    local r = t.relation
    local k = key(session, r.schemaname and (r.schemaname .. "." .. r.relname) or r.relname)
    if t.partspec then
      if remembered > 10000 then partitioned, remembered = {}, 0 end
      remembered = remembered + 1
      partitioned[k] = true
    else
      partitioned[k] = nil
    end
  elseif stmt.tag == "DROP TABLE" then
    for _, o in ipairs(stmt.objects) do partitioned[key(session, qualified(o))] = nil end
  end
end

return {
  id = "partitioned-index-nonconcurrent",
  severity = "P1", class = "LOCK",
  summary = "CREATE INDEX on a partitioned table blocks writes to every partition",
  why = "An index on a partitioned table is built on each partition in turn, with SHARE on the "
     .. "parent and on every partition until the last one is done: writes to the whole table stop. "
     .. "PostgreSQL refuses CREATE INDEX CONCURRENTLY on a partitioned table.",
  instead = "CREATE INDEX parent_idx ON ONLY parent (…) (instant, left invalid); for each partition "
     .. "CREATE INDEX CONCURRENTLY part_idx ON partition (…) and ALTER INDEX parent_idx ATTACH "
     .. "PARTITION part_idx; the parent index becomes valid when every partition has one.",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    learn(stmt, session)
    if stmt.tag ~= "CREATE INDEX" then return nil end
    local t = stmt.objects[1]
    local f = ctx.facts(t)
    if f and f.exists then
      if f.kind ~= "p" then return nil end
    elseif not partitioned[key(session, qualified(t))] then
      return nil
    end
    if stmt.concurrently then
      return "CREATE INDEX CONCURRENTLY on partitioned table " .. qualified(t)
             .. " fails: PostgreSQL cannot build a partitioned index concurrently"
    end
    -- ON ONLY builds nothing; a new or small partitioned table is built at once.
    if not stmt.tree.relation.inh or ctx.new(t) or ctx.small(t) then return nil end
    return "CREATE INDEX on partitioned table " .. qualified(t)
           .. " blocks writes to every partition until all are built" .. ctx.lock_note(t)
  end,
}

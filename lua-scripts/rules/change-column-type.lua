-- Catalog #21. ALTER COLUMN … TYPE rewrites the table and its indexes unless the new type is
-- binary-coercible from the old one (varchar(50) to varchar(100) or text, numeric(10,2) to
-- numeric(12,2) …).
--
-- The column's current type is not in the statement's text. The rule remembers the column
-- types it has seen (CREATE TABLE, ADD COLUMN, ALTER COLUMN TYPE) since ddlguard started, per
-- environment, database and table name as written; with the old type known it lets the free
-- changes pass, otherwise it assumes a rewrite.
local types = {}   -- table key -> column -> { name =, mods = { … } }
local remembered = 0

local function key(session, name)
  return session.environment .. "/" .. session.database .. "/" .. name
end

-- { name = "varchar", mods = { 50 } } from a parse tree TypeName.
local function typeof(tn)
  local parts = {}
  for _, n in ipairs(tn.names) do
    if n.sval ~= "pg_catalog" then parts[#parts + 1] = n.sval end
  end
  local t = { name = table.concat(parts, "."), mods = {} }
  for _, m in ipairs(tn.typmods) do t.mods[#t.mods + 1] = m.ival and (m.ival.ival or 0) or -1 end
  if #tn.array_bounds > 0 then t.name = t.name .. "[]" end
  return t
end

-- The SQL names of the types the parser renames.
local sql_name = {
  int2 = "smallint", int4 = "integer", int8 = "bigint", float4 = "real", float8 = "double precision",
  bool = "boolean", bpchar = "char",
}
-- No other type becomes one of these without a rewrite.
local never_free = {
  int2 = true, int4 = true, int8 = true, float4 = true, float8 = true, bool = true, json = true,
  jsonb = true, uuid = true, date = true, bytea = true, inet = true, cidr = true, money = true,
}

local function show(t)
  local name = sql_name[t.name] or t.name
  return #t.mods > 0 and (name .. "(" .. table.concat(t.mods, ",") .. ")") or name
end

-- True when PostgreSQL changes only the catalog: the old values are valid as they are.
local function free(old, new)
  if show(old) == show(new) then return true end
  local o, n = old.name, new.name
  if (o == "varchar" or o == "text") and (n == "text" or (n == "varchar" and #new.mods == 0)) then
    return true
  end
  if o == "varchar" and n == "varchar" then return #old.mods == 1 and new.mods[1] >= old.mods[1] end
  if o == "numeric" and n == "numeric" then
    if #new.mods == 0 then return true end
    return #old.mods > 0 and (old.mods[2] or 0) == (new.mods[2] or 0) and new.mods[1] >= old.mods[1]
  end
  return false
end

local function columns(session, name)
  local k = key(session, name)
  if not types[k] then
    if remembered > 10000 then types, remembered = {}, 0 end
    remembered = remembered + 1
    types[k] = {}
  end
  return types[k]
end

return {
  id = "change-column-type",
  severity = "P0", class = "REWRITE",
  summary = "ALTER COLUMN … TYPE rewrites the whole table unless the change is binary-coercible",
  why = "Changing a column's type takes ACCESS EXCLUSIVE and, unless the old values are valid as they "
     .. "are, rewrites the table and rebuilds all its indexes: no reads or writes until it is done "
     .. "(int to bigint, varchar(50) to varchar(20), text to varchar(255), json to jsonb, a USING "
     .. "expression, a new collation). The running app may also mis-read the new type.",
  instead = "Expand and contract: add a new column of the new type, write both (trigger or app), "
     .. "backfill in batches, switch reads, then drop the old column.",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    local tree = stmt.tree
    if stmt.tag == "DROP TABLE" then
      for _, o in ipairs(stmt.objects) do types[key(session, qualified(o))] = nil end
    elseif tree.node_type == "CreateStmt" then
      local cols = columns(session, qualified(stmt.objects[1]))
      for _, e in ipairs(tree.table_elts) do
        if e.node_type == "ColumnDef" and e.type_name then cols[e.colname] = typeof(e.type_name) end
      end
    elseif tree.node_type == "RenameStmt" and tree.rename_type == "OBJECT_COLUMN" then
      local cols = columns(session, qualified(stmt.objects[1]))
      cols[tree.newname], cols[tree.subname] = cols[tree.subname], nil
    end
    if tree.node_type ~= "AlterTableStmt" or stmt.tag ~= "ALTER TABLE" then return nil end
    local t = stmt.objects[1]
    local cols = columns(session, qualified(t))
    for _, cmd in ipairs(tree.cmds) do
      if cmd.subtype == "AT_AddColumn" then
        cols[cmd.def.colname] = typeof(cmd.def.type_name)
      elseif cmd.subtype == "AT_DropColumn" then
        cols[cmd.name] = nil
      elseif cmd.subtype == "AT_AlterColumnType" then
        local new, old = typeof(cmd.def.type_name), cols[cmd.name]
        cols[cmd.name] = new
        -- USING the column itself and no new collation: PostgreSQL may keep the values as they are.
        local using = cmd.def.raw_default
        local plain = cmd.def.coll_clause == nil and (using == nil or (using.node_type == "ColumnRef"
                      and using.fields[#using.fields].sval == cmd.name))
        local where = qualified(t) .. "." .. cmd.name .. " TYPE " .. show(new)
        -- A table created in this session is empty; a small one is rewritten in no time.
        if not (ctx.new(t) or ctx.small(t) or (old and plain and free(old, new))) then
          if old or not plain or never_free[new.name] then
            return "ALTER COLUMN " .. where .. (old and (" (from " .. show(old) .. ")") or "")
                   .. " rewrites the table and all its indexes" .. ctx.lock_note(t)
          end
          return { message = "ALTER COLUMN " .. where .. " rewrites the table and all its indexes "
                             .. "unless the change is binary-coercible; ddlguard does not know the "
                             .. "current type" .. ctx.lock_note(t),
                   hint = "If it is binary-coercible (varchar(n) to a larger n, varchar or text; "
                          .. "numeric(p,s) to a larger p or plain numeric), override this rule "
                          .. "inline. Otherwise expand and contract: new column, dual writes, "
                          .. "batched backfill, switch reads, drop the old column." }
        end
      end
    end
  end,
}

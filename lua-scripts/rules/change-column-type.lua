-- Catalog #21. ALTER COLUMN … TYPE rewrites the table and its indexes unless the new type is
-- binary-coercible from the old one (varchar(50) to varchar(100) or text, numeric(10,2) to
-- numeric(12,2) …).
--
-- The column's current type is not in the statement's text. The rule remembers the types it
-- has seen given to columns (CREATE TABLE, ADD COLUMN, ALTER COLUMN TYPE) since ddlguard
-- started, per environment, database and table name as written, for the types a free change
-- can start from: "<table>.<column>" -> "varchar(50)". With the old type known it lets the
-- free changes pass, otherwise it assumes a rewrite. Bounded: the newest 1000 entries and the
-- 1000 before them.
local new, old, count = {}, {}, 0

local function recall(k)
  local v = new[k]
  if v == nil then v = old[k] end
  return v
end

local function remember(k, v)
  if v == nil then new[k], old[k] = nil, nil return end
  if new[k] == nil then count = count + 1 end
  new[k] = v
  if count >= 1000 then new, old, count = {}, new, 0 end
end

-- A parse-tree TypeName as a string: "varchar(50)", "numeric(10,2)", "int8", "text[]".
local function type_string(tn)
  local parts, mods = {}, {}
  for _, n in ipairs(tn.names) do
    if n.sval ~= "pg_catalog" then parts[#parts + 1] = n.sval end
  end
  for _, m in ipairs(tn.typmods) do mods[#mods + 1] = m.ival and (m.ival.ival or 0) or "?" end
  local s = table.concat(parts, ".")
  if #mods > 0 then s = s .. "(" .. table.concat(mods, ",") .. ")" end
  if #tn.array_bounds > 0 then s = s .. "[]" end
  return s
end

-- "numeric(10,2)" -> "numeric", 10, 2; "text" -> "text", nil, nil.
local function split(s)
  local name, a, b = string.match(s, "^([^(]+)%(?(%d*),?(%d*)%)?$")
  return name or s, tonumber(a), tonumber(b)
end

-- True when PostgreSQL changes only the catalog: the old values are valid as they are.
local function free(old_type, new_type)
  if old_type == new_type then return true end
  local o, op, os = split(old_type)
  local n, np, ns = split(new_type)
  if (o == "varchar" or o == "text") and (new_type == "text" or new_type == "varchar") then
    return true
  end
  if o == "varchar" and n == "varchar" then return op ~= nil and np ~= nil and np >= op end
  if o == "numeric" and n == "numeric" then
    if new_type == "numeric" then return true end
    return op ~= nil and np ~= nil and np >= op and (os or 0) == (ns or 0)
  end
  return false
end

-- The types a free change can start from: only these are remembered.
local tracked = { varchar = true, text = true, numeric = true }
-- No other type becomes one of these without a rewrite.
local never_free = {
  int2 = true, int4 = true, int8 = true, float4 = true, float8 = true, bool = true, json = true,
  jsonb = true, uuid = true, date = true, bytea = true, inet = true, cidr = true, money = true,
}
-- The SQL names of the types the parser renames, for messages.
local sql_name = {
  int2 = "smallint", int4 = "integer", int8 = "bigint", float4 = "real", float8 = "double precision",
  bool = "boolean", bpchar = "char",
}

local function show(s)
  local name, rest = string.match(s, "^([^(%[]+)(.*)$")
  return (sql_name[name] or name) .. rest
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
    local db = session.environment .. "/" .. session.database .. "/"
    -- Remember the type a column now has (or forget it, when it is not one worth keeping).
    local function learn(tk, col, ty)
      remember(tk .. "." .. col, ty and tracked[split(ty)] and ty or nil)
    end
    if stmt.node == "CreateStmt" then
      local tk = db .. qualified(stmt.objects[1])
      for _, e in ipairs(stmt.tree.table_elts) do
        if e.node_type == "ColumnDef" and e.type_name then
          learn(tk, e.colname, type_string(e.type_name))
        end
      end
    end
    local t = stmt.objects[1]
    if stmt.tag ~= "ALTER TABLE" or not t then return nil end
    local tk = db .. qualified(t)
    for i, sub in ipairs(stmt.subcommands) do
      local col = sub.column
      if sub.name == "RENAME COLUMN" then
        learn(tk, stmt.tree.newname, recall(tk .. "." .. col))
        learn(tk, col, nil)
      elseif sub.name == "DROP COLUMN" then
        learn(tk, col, nil)
      elseif sub.name == "ADD COLUMN" then
        -- The i-th sub-command is the i-th command of the parse tree.
        learn(tk, col, type_string(stmt.tree.cmds[i].def.type_name))
      elseif sub.name == "ALTER COLUMN TYPE" then
        local cmd = stmt.tree.cmds[i]
        local new_type, old_type = type_string(cmd.def.type_name), recall(tk .. "." .. col)
        learn(tk, col, new_type)
        -- USING the column itself and no new collation: PostgreSQL may keep the values as they are.
        local using = cmd.def.raw_default
        local plain = cmd.def.coll_clause == nil and (using == nil or (using.node_type == "ColumnRef"
                      and using.fields[#using.fields].sval == col))
        local where = qualified(t) .. "." .. col .. " TYPE " .. show(new_type)
        -- A table created in this session is empty; a small one is rewritten in no time.
        if not (ctx.new(t) or ctx.small(t) or (old_type and plain and free(old_type, new_type))) then
          if old_type or not plain or never_free[split(new_type)] then
            return "ALTER COLUMN " .. where .. (old_type and (" (from " .. show(old_type) .. ")") or "")
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

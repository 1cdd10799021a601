-- The policy fuzz_policy loads: it reads every field of the statement object (stmt.tree
-- included, walked whole), of each object and sub-command, and of the session, asks
-- facts() about every object, and then decides from what it saw, so every kind of
-- decision reaches the engine. An assert() that fails here is a policy failure, which the
-- fuzz target reports as a crash: these are the promises docs/policies.md makes.

see_dml = true
see_writes = true

local STMT = { "text", "tag", "node", "ddl", "opaque", "concurrently", "not_valid", "if_exists",
               "if_not_exists", "cascade", "in_transaction_ok", "lock", "lock_level", "line",
               "column", "fingerprint", "strict_id" }
local OBJECT = { "schema", "name", "kind", "lock", "lock_level", "rewrite", "scan", "created",
                 "dropped", "bookkeeping" }
local SUBCMD = { "name", "column", "lock", "lock_level", "rewrite", "scan", "not_valid" }

local left        -- tree nodes still to visit for this statement

-- Walk a tree view: messages have node_type and fields, lists have # and items.
local function walk(v, depth)
  if left <= 0 or depth > 60 then return 0 end
  left = left - 1
  if type(v) ~= "userdata" then return 1 end
  local seen = 1
  assert(type(tostring(v)) == "string")
  assert(not pcall(function() v.anything = 1 end), "tree view is writable")
  local nt = v.node_type
  if nt then
    assert(type(nt) == "string")
    assert(rawequal(v[nt], v), "x." .. nt .. " is not x")
    local last
    for k, x in pairs(v) do
      if k ~= "node_type" then
        assert(type(k) == "string")
        local again = v[k]
        assert(rawequal(again, x) or (x ~= x and again ~= again), "field " .. k .. " read twice differs")
        seen = seen + walk(x, depth + 1)
      end
      last = k
    end
    assert(last ~= nil, "pairs() gave nothing")
    assert(v.no_such_field_here == nil)
  else
    local n = #v
    assert(math.type(n) == "integer" and n >= 0)
    assert(v[0] == nil and v[n + 1] == nil and v.x == nil)
    for i = 1, n do seen = seen + walk(v[i], depth + 1) end
    for i, x in pairs(v) do assert(i >= 1 and i <= n and rawequal(v[i], x)) end
    local count = 0
    for _ in ipairs(v) do count = count + 1 end
    assert(count <= n)
  end
  return seen
end

local function facts_of(o)
  local f = facts(o)
  if f == nil then return 0 end
  assert(type(f.exists) == "boolean")
  local n = 0
  for _, h in ipairs(f.holders) do
    assert(type(h.pid) == "number" and type(h.granted) == "boolean")
    n = n + #(h.mode or "") + #(h.query or "") + #(h.state or "") + #(h.application_name or "")
    n = n + (h.xact_age or 0)
  end
  return n + (f.rows or 0) % 7 + (f.indexes or 0) + #(f.kind or "")
end

function on_statement(stmt, session)
  local h = 0
  for _, k in ipairs(STMT) do
    local v = stmt[k]
    if type(v) == "string" then h = h + #v elseif v == true then h = h + 1
    elseif type(v) == "number" then h = h + v end
  end
  assert(type(stmt.tag) == "string" and type(stmt.lock) == "string")
  assert(stmt.lock_level >= LOCK.NONE and stmt.lock_level <= LOCK.ACCESS_EXCLUSIVE)
  assert(#stmt.strict_id == 64 and #stmt.fingerprint == 16)
  for i, o in ipairs(stmt.objects) do
    for _, k in ipairs(OBJECT) do
      local v = o[k]
      if type(v) == "string" then h = h + #v + i elseif v then h = h + 1 end
    end
    assert(type(o.name) == "string", "object without a name")
    h = h + facts_of(o) + #qualified(o)
    if created_in_session(session, o) then h = h + 3 end
  end
  for _, c in ipairs(stmt.subcommands) do
    for _, k in ipairs(SUBCMD) do
      local v = c[k]
      if type(v) == "string" then h = h + #v elseif v then h = h + 1 end
    end
  end
  left = 4000
  local tree = stmt.tree
  if tree ~= nil then
    assert(rawequal(stmt.tree, tree), "stmt.tree is not cached")
    assert(tree.node_type == stmt.node, "tree is a " .. tostring(tree.node_type) .. ", stmt.node " .. stmt.node)
    h = h + walk(tree, 0)
  end
  h = h + #session.user + #session.database + #session.application_name + #session.client_addr
  h = h + #session.environment + (session.tls and 1 or 0) + #session.tx_status
  local n = #session.statements
  for i = 1, n do
    local s = session.statements[i]
    assert(s and type(s.tag) == "string", "statements[" .. i .. "] missing")
    assert(rawequal(session.statements[i], s), "statements[i] read twice differs")
    h = h + #s.tag + #(s.text or "") + #(s.strict_id or "")
  end
  assert(session.statements[n + 1] == nil and session.statements[0] == nil)
  if session.created["public.t"] then h = h + 1 end

  h = math.floor(h) % 11
  if h == 0 then
    return deny{ message = "fuzz deny " .. stmt.tag, detail = stmt.text:sub(1, 40), hint = "none",
                 rule = "fuzz-rule", override = true }
  elseif h == 1 then
    return deny{ sqlstate = "42P99", message = "fuzz deny", rule = "fuzz-strict" }
  elseif h == 2 then
    return warn("fuzz warning on " .. stmt.tag, "a hint")
  elseif h == 3 then
    return set{ lock_timeout = "1s", statement_timeout = 1500 + h }
  elseif h == 4 then
    return { warn("one"), set{ lock_timeout = 900 }, allow() }
  end
  return allow()
end

function on_end(session)
  assert(session.tx_status == "idle" or session.tx_status == "in_transaction" or session.tx_status == "failed")
  return #session.statements > 3 and warn("long migration") or nil
end

function on_commit(tx, session)
  assert(session ~= nil)
end

function on_lock_wait(wait, session)
  if wait.waited and wait.waited > 1 then return cancel() end
end

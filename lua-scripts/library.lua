-- ddlguard's rule library: applies the rules in rules/<id>.lua to every guarded statement.
--
-- ddlguard loads each rule file in its own sandbox and hands the rules to this policy as
-- RULES, with LIBRARY = { profile, levels, small_table_rows } from the configuration:
--   rules = default | strict | none          (none: every rule off unless given a level)
--   rule_levels = drop-column:warn, production/drop-column:deny, prefer-text:off
-- A level named for an environment beats a plain one, which beats the profile's.
--
-- A rule file returns:
--   {
--     id = "require-concurrent-index",      -- the file's name
--     severity = "P1", class = "LOCK",      -- from the catalog (P0 worst … P3 style)
--     summary = "…", why = "…", instead = "…",
--     default = "deny", strict = "deny",    -- its level in each profile: deny | warn | off
--     override = true,                      -- an inline ddlguard:allow comment may lift it
--     check = function(stmt, session, ctx) … end,
--   }
-- dml = true makes ddlguard show the rules INSERT/UPDATE/DELETE and SET statements too.
-- at_end = function(session, ctx) is asked when the migration ends (the end of a file in
-- `ddlguard check`, the end of the session through the proxy), with the same answers.
-- check returns nil when the statement is fine, else a message (or { message=, hint= }),
-- or { set = { lock_timeout = "2s", statement_timeout = "15min" } } to tighten timeouts
-- (any level but off applies it).
-- ctx gives what a text linter cannot know: ctx.new(obj) (created earlier in this session,
-- so empty and exempt from lock rules), ctx.facts(obj), ctx.small(obj) (fewer than
-- small_table_rows estimated rows), ctx.rows(obj), ctx.lock_note(obj), ctx.columns(stmt)
-- (the columns a statement defines) and ctx.type_of(column definition).

local levels = {}
-- Later entries win: the DBA's policy files' rule_levels come first, the configuration's last.
for item in string.gmatch(LIBRARY.levels or "", "[^,%s]+") do
  local key, level = string.match(item, "^(.+):(%a+)$")
  if not key or (level ~= "deny" and level ~= "warn" and level ~= "off") then
    error("rule_levels: \"" .. item .. "\" is not RULE:deny|warn|off (or ENV/RULE:LEVEL)")
  end
  levels[key] = level
end

local known = {}
for _, r in ipairs(RULES) do known[r.id] = true end
for key in pairs(levels) do
  local id = string.match(key, "/(.+)$") or key
  if not known[id] then error("rule_levels names an unknown rule \"" .. id .. "\"") end
end

local function level_of(rule, env)
  local l = levels[env .. "/" .. rule.id] or levels[rule.id]
  if l then return l end
  if LIBRARY.profile == "strict" then return rule.strict or rule.default or "off" end
  if LIBRARY.profile == "default" then return rule.default or "off" end
  return "off"
end

-- The helpers rules get. Built once; only ctx.session and ctx.in_transaction change per call.
local ctx = { small_table_rows = LIBRARY.small_table_rows,
              lock_timeout = LIBRARY.lock_timeout or "2s",
              statement_timeout = LIBRARY.statement_timeout or "30min" }
function ctx.new(o)
  return o.created or created_in_session(ctx.session, o)
end
function ctx.facts(o)
  return facts(o)
end
function ctx.rows(o)
  local f = facts(o)
  if f and f.exists then return f.rows end
end
function ctx.small(o)
  local n = ctx.rows(o)
  return n ~= nil and n < LIBRARY.small_table_rows
end
-- "(about 1200000 rows; ACCESS EXCLUSIVE)" when the facts are known, for messages.
function ctx.lock_note(o)
  local n = ctx.rows(o)
  local lock = o.lock or "?"
  if n then return string.format(" (about %d rows; %s)", n, lock) end
  return " (" .. lock .. ")"
end

-- The columns a CREATE TABLE defines or an ALTER TABLE adds or retypes: { name, def }.
function ctx.columns(stmt)
  local t, out = stmt.tree, {}
  if t.node_type == "CreateStmt" then
    for _, e in ipairs(t.table_elts) do
      if e.node_type == "ColumnDef" then out[#out + 1] = { name = e.colname, def = e } end
    end
  elseif t.node_type == "AlterTableStmt" then
    for _, c in ipairs(t.cmds) do
      if c.subtype == "AT_AddColumn" then out[#out + 1] = { name = c.def.colname, def = c.def } end
      if c.subtype == "AT_AlterColumnType" then out[#out + 1] = { name = c.name, def = c.def } end
    end
  end
  return out
end
-- A column definition's type name without its schema, as the parser spells it: int4, varchar …
function ctx.type_of(def)
  local names = def.type_name and def.type_name.names
  return names and names[#names].sval
end

local function make_ctx(session)
  ctx.session = session
  ctx.in_transaction = session.tx_status ~= "idle"
  return ctx
end

-- The rules that are on in an environment, with their levels: worked out once per environment.
local active_by_env = {}
local function active_rules(env)
  local list = active_by_env[env]
  if not list then
    list = {}
    for _, rule in ipairs(RULES) do
      local level = level_of(rule, env)
      if level ~= "off" then list[#list + 1] = { rule = rule, level = level } end
    end
    active_by_env[env] = list
  end
  return list
end

function on_statement(stmt, session)
  local out = {}
  local ctx = make_ctx(session)
  for _, a in ipairs(active_rules(session.environment)) do
    local rule, level = a.rule, a.level
    -- A failing rule is named: the error carries its id.
    local ok, found = pcall(rule.check, stmt, session, ctx)
    if not ok then error("rule " .. rule.id .. ": " .. tostring(found), 0) end
    if type(found) == "table" and found.set then
      out[#out + 1] = set(found.set)
    elseif found then
      local msg, hint = found, rule.instead
      if type(found) == "table" then msg, hint = found.message, found.hint or rule.instead end
      if level == "deny" then
        out[#out + 1] = deny{ rule = rule.id, message = msg, hint = hint, detail = rule.why,
                              override = rule.override }
      else
        out[#out + 1] = warn{ rule = rule.id, message = msg, hint = hint }
      end
    end
  end
  return out
end

-- The migration ended: rules that judge the whole of it (at_end).
function on_end(session)
  local out = {}
  local ctx = make_ctx(session)
  for _, a in ipairs(active_rules(session.environment)) do
    local rule, level = a.rule, a.level
    if rule.at_end then
      local ok, found = pcall(rule.at_end, session, ctx)
      if not ok then error("rule " .. rule.id .. ": " .. tostring(found), 0) end
      if found then
        local msg = type(found) == "table" and found.message or found
        if level == "deny" then
          out[#out + 1] = deny{ rule = rule.id, message = msg, hint = rule.instead, detail = rule.why }
        else
          out[#out + 1] = warn{ rule = rule.id, message = msg, hint = rule.instead }
        end
      end
    end
  end
  return out
end

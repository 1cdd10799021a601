-- Catalog #11 (ours). ADD COLUMN of a domain type with a CHECK or NOT NULL rewrites the table.
--
-- Whether a type is a domain with constraints is not in the statement's text, and the live
-- facts describe tables, not types. The rule remembers the domains it has seen get a CHECK or
-- NOT NULL (CREATE DOMAIN, ALTER DOMAIN … ADD CONSTRAINT / SET NOT NULL) since ddlguard
-- started, per environment and database, by name as written.
local constrained = {}
local remembered = 0

local function key(session, names)
  local parts = {}
  for i, n in ipairs(names) do parts[i] = n.sval end
  return session.environment .. "/" .. session.database .. "/" .. table.concat(parts, ".")
end

local function learn(stmt, session)
  local node = stmt.node
  if node ~= "CreateDomainStmt" and node ~= "AlterDomainStmt" and stmt.tag ~= "DROP DOMAIN" then
    return
  end
  local t = stmt.tree
  if t.node_type == "CreateDomainStmt" then
    local has = nil
    for _, c in ipairs(t.constraints) do
      if c.contype == "CONSTR_CHECK" or c.contype == "CONSTR_NOTNULL" then has = true end
    end
    if has then
      if remembered > 10000 then constrained, remembered = {}, 0 end
      remembered = remembered + 1
    end
    constrained[key(session, t.domainname)] = has
  elseif t.node_type == "AlterDomainStmt" and (t.subtype == "C" or t.subtype == "O") then
    constrained[key(session, t.type_name)] = true
  elseif t.node_type == "DropStmt" and t.remove_type == "OBJECT_DOMAIN" then
    for _, tn in ipairs(t.objects) do constrained[key(session, tn.names)] = nil end
  end
end

return {
  id = "add-column-constrained-domain",
  severity = "P0", class = "REWRITE",
  summary = "ADD COLUMN of a domain type with constraints rewrites the whole table",
  why = "When the new column's type is a domain with a CHECK or NOT NULL, PostgreSQL checks the "
     .. "domain's constraints against every existing row by rewriting the table and all its indexes "
     .. "under ACCESS EXCLUSIVE: no reads or writes until it is done, even with no DEFAULT.",
  instead = "Use the domain's base type, then ADD CONSTRAINT … CHECK (…) NOT VALID and, in a later "
     .. "transaction, VALIDATE CONSTRAINT.",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    learn(stmt, session)
    if stmt.node ~= "AlterTableStmt" or stmt.tag ~= "ALTER TABLE" then return nil end
    local t = stmt.objects[1]
    if next(constrained) == nil or ctx.new(t) or ctx.small(t) then return nil end
    for i, sub in ipairs(stmt.subcommands) do
      -- The i-th sub-command is the i-th command of the parse tree.
      local ty = sub.name == "ADD COLUMN" and stmt.tree.cmds[i].def.type_name
      -- An array of a domain is not a domain: no rewrite.
      if ty and #ty.array_bounds == 0 and constrained[key(session, ty.names)] then
        local names = {}
        for k, n in ipairs(ty.names) do names[k] = n.sval end
        return "ADD COLUMN " .. qualified(t) .. "." .. sub.column .. " of domain "
               .. table.concat(names, ".") .. ", which has constraints, rewrites the table"
               .. ctx.lock_note(t)
      end
    end
  end,
}

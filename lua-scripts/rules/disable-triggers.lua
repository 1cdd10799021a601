-- Catalog #31. Disabled triggers silently stop audit, dual-write and foreign-key checks.

-- session_replication_role = replica, in the forms that reach the rules: set_config() in a
-- SELECT, ALTER ROLE / ALTER DATABASE … SET, and a plain SET (which ddlguard shows to the
-- rules only when a policy file sets see_dml = true).
local function string_arg(call, i)
  local a = call.args[i]
  return a and a.sval and a.sval.sval
end

local function sets_replica(set)
  local value = set and set.args[1]
  return set ~= nil and set.name == "session_replication_role" and value ~= nil
     and value.sval ~= nil and value.sval.sval == "replica"
end

local function replica_role(stmt)
  local t = stmt.tree
  if stmt.node == "VariableSetStmt" then
    return sets_replica(t) and "everything this session writes"
  elseif stmt.node == "AlterRoleSetStmt" or stmt.node == "AlterDatabaseSetStmt" then
    return sets_replica(t.setstmt) and "every later session of that "
        .. (stmt.node == "AlterRoleSetStmt" and "role" or "database")
  elseif stmt.node == "SelectStmt" then
    for _, target in ipairs(t.target_list) do
      local call = target.val
      if call and call.node_type == "FuncCall" and call.funcname[#call.funcname].sval == "set_config"
         and string_arg(call, 1) == "session_replication_role" and string_arg(call, 2) == "replica" then
        return "everything this session writes"
      end
    end
  end
  return false
end

return {
  id = "disable-triggers",
  severity = "P1", class = "DATA",
  summary = "DISABLE TRIGGER (or session_replication_role = replica) silently turns off integrity checks",
  why = "A disabled trigger stops firing for every session until it is enabled again: audit, "
     .. "dual-write and sync triggers miss every write in between. DISABLE TRIGGER ALL also turns "
     .. "off the internal triggers that enforce foreign keys, so rows that point nowhere go in "
     .. "unnoticed, and session_replication_role = replica does the same for the whole session. "
     .. "The ALTER TABLE forms take SHARE ROW EXCLUSIVE, which blocks writes while waiting.",
  instead = "Avoid it. If it cannot be avoided, disable and re-enable the trigger in one short "
     .. "transaction (BEGIN; ALTER TABLE … DISABLE TRIGGER …; …; ALTER TABLE … ENABLE TRIGGER …; "
     .. "COMMIT;) and name the trigger rather than ALL.",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    local who = replica_role(stmt)
    if who then
      return "session_replication_role = replica turns off ordinary triggers and foreign-key "
          .. "checks for " .. who
    end
    if stmt.tag ~= "ALTER TABLE" then return nil end
    local t = stmt.objects[1]
    -- No new-table exemption: the trigger stays off after the migration if nobody
    -- enables it again, and a new table's foreign keys matter as much as an old one's.
    for _, c in ipairs(stmt.subcommands) do
      if c.name == "DISABLE TRIGGER ALL" then
        return "DISABLE TRIGGER ALL on " .. qualified(t) .. " also turns off its foreign-key "
            .. "checks: integrity is not enforced until the triggers are enabled again"
      elseif c.name == "DISABLE TRIGGER USER" then
        return "DISABLE TRIGGER USER on " .. qualified(t) .. " stops every user trigger (audit, "
            .. "dual-write…) for every session until they are enabled again"
      elseif c.name == "DISABLE TRIGGER" then
        return "DISABLE TRIGGER " .. (c.column or "?") .. " on " .. qualified(t) .. " stops it for "
            .. "every session until it is enabled again"
      end
    end
  end,
}

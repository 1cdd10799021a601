-- Catalog #39. Renaming a schema breaks every qualified name and search_path that uses it.
return {
  id = "rename-schema",
  severity = "P1", class = "COMPAT",
  summary = "ALTER SCHEMA … RENAME TO breaks every query, search_path and grant script that names the schema",
  why = "Every query that qualifies a name with the old schema, every search_path (of roles, "
     .. "databases, connection strings) that lists it, and every function body that mentions it "
     .. "stops working at once; the running version of the app fails until it is redeployed "
     .. "with the new name.",
  instead = "Create the new schema and move objects expand/contract style (new objects, or views "
     .. "in the old schema that point at the new ones), switch the app, then drop the old schema "
     .. "in a later release.",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    if stmt.node ~= "RenameStmt" or stmt.tree.rename_type ~= "OBJECT_SCHEMA" then return nil end
    local s = stmt.objects[1]
    -- A schema created earlier in this session is not used by deployed code yet.
    if not s or ctx.new(s) then return nil end
    return "renaming schema " .. s.name .. " to " .. (stmt.tree.newname or "?")
        .. " breaks every query and search_path that still names " .. s.name
  end,
}

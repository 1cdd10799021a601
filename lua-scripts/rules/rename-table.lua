-- Catalog #38. Renaming (or moving) a table breaks the application version that still uses it.
local relations = { table = true, view = true, ["materialized view"] = true }

return {
  id = "rename-table",
  severity = "P1", class = "COMPAT",
  summary = "RENAME TO (or SET SCHEMA) of a table breaks the application version that is still running",
  why = "The rename itself is instant (a brief ACCESS EXCLUSIVE lock), but during a rolling deploy "
     .. "the old version of the app still queries the old name, and every such query fails until "
     .. "the new version is out. SET SCHEMA breaks the same queries: the table is no longer where "
     .. "they, or the search_path, look for it.",
  instead = "Rename and, in the same transaction, CREATE VIEW old_name AS SELECT * FROM new_name "
     .. "(a simple view is updatable, so the old app keeps working); drop the view once no deployed "
     .. "version uses the old name. ddlguard checks one statement at a time and cannot see that "
     .. "view coming: lift the rule inline for the rename when you use it.",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    local t = stmt.objects[1]
    -- Indexes and sequences are renamed too; applications rarely name them.
    if not t or not relations[t.kind] or ctx.new(t) then return nil end
    for _, c in ipairs(stmt.subcommands) do
      if c.name == "RENAME TO" then
        return "renaming " .. qualified(t) .. " to " .. (stmt.tree.newname or "?")
            .. " breaks the version of the app that still uses " .. qualified(t)
      elseif c.name == "SET SCHEMA" then
        return "moving " .. qualified(t) .. " to schema " .. (stmt.tree.newschema or "?")
            .. " breaks the version of the app that still looks for it where it was"
      end
    end
  end,
}

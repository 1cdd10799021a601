-- Catalog #41. Dropping a table the running version of the app still uses breaks it.
return {
  id = "drop-table",
  severity = "P1", class = "COMPAT",
  summary = "DROP TABLE breaks the application version that is still running",
  why = "During a rolling deploy the old version of the app keeps running and still queries the "
     .. "table; dropping it makes those queries fail, and the data is gone with no way back.",
  instead = "Stop using the table in one release; drop it in a later release (after a backup), "
     .. "or rename it first and drop it once nothing failed.",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    if stmt.tag ~= "DROP TABLE" then return nil end
    for _, o in ipairs(stmt.objects) do
      -- A table created earlier in this session is the migration's own scratch table.
      if not ctx.new(o) then
        return "DROP TABLE " .. qualified(o) .. " breaks the version of the app that still uses it"
      end
    end
  end,
}

-- Catalog #40. Dropping a column breaks the application version that still selects it.
return {
  id = "drop-column",
  severity = "P1", class = "COMPAT",
  summary = "DROP COLUMN breaks the application version that still uses the column, and its data is gone",
  why = "The drop itself is instant (a brief ACCESS EXCLUSIVE lock, no rewrite), but the running "
     .. "version of the app still names the column: ORMs such as Rails and Django list every "
     .. "column in their INSERTs and SELECTs, so those fail until the new version is out. The "
     .. "data, and the indexes and constraints on the column, are gone with no way back.",
  instead = "Stop using the column in the code first (Rails ignored_columns, "
     .. "django-deprecate-fields, or simply stop reading and writing it), deploy that, then drop "
     .. "the column in a later release, after a backup.",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    if stmt.node ~= "AlterTableStmt" then return nil end
    local t = stmt.objects[1]
    -- ALTER TYPE … DROP ATTRIBUTE is a composite type, not a table; and no deployed code
    -- uses a table created earlier in this session.
    if not t or t.kind ~= "table" or ctx.new(t) then return nil end
    local dropped = {}
    for _, c in ipairs(stmt.subcommands) do
      if c.name == "DROP COLUMN" then dropped[#dropped + 1] = c.column or "?" end
    end
    if #dropped == 0 then return nil end
    local what = #dropped == 1 and "column " or "columns "
    return "dropping " .. what .. table.concat(dropped, ", ") .. " of " .. qualified(t) .. " breaks "
        .. "the version of the app that still uses " .. (#dropped == 1 and "it" or "them")
        .. ", and the data is gone"
  end,
}

-- Catalog #45. TRUNCATE … CASCADE also empties every table that references the named ones.
return {
  id = "truncate-cascade",
  severity = "P0", class = "DATA",
  summary = "TRUNCATE … CASCADE also empties every table with a foreign key to the named tables",
  why = "CASCADE follows foreign keys recursively: every table that references a truncated table "
     .. "is truncated too, then every table that references those, without listing them. One "
     .. "TRUNCATE of a small lookup table can empty the biggest tables of the database, each "
     .. "under ACCESS EXCLUSIVE.",
  instead = "Name every table to empty explicitly in the TRUNCATE (it fails if one is missing, "
     .. "which is the point), after checking that each of them really should be emptied.",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    if stmt.tag ~= "TRUNCATE TABLE" or not stmt.cascade then return nil end
    for _, o in ipairs(stmt.objects) do
      -- Only tables created earlier in this session are known to have no old referencing tables.
      if not ctx.new(o) then
        return "TRUNCATE " .. qualified(o) .. " CASCADE also empties every table that references it, "
            .. "recursively, without naming them"
      end
    end
  end,
}

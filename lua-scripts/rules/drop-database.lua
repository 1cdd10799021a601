-- Catalog #43. DROP DATABASE: everything in it is gone.
return {
  id = "drop-database",
  severity = "P0", class = "DATA",
  summary = "DROP DATABASE destroys the whole database",
  why = "Every table, every row and every object of the database is deleted, and the files are "
     .. "removed from disk: only a backup brings it back. A migration has no business doing it.",
  instead = "Don't do it from a migration. Decommission a database by hand, after a backup, "
     .. "outside the migration tool.",
  default = "deny", strict = "deny",
  -- The catalog's only alternative is "don't": an inline comment must not lift it. An
  -- operator who truly means it runs it outside the proxy or sets drop-database:off.
  override = false,
  check = function(stmt, session, ctx)
    if stmt.tag ~= "DROP DATABASE" then return nil end
    local d = stmt.objects[1]
    -- A database created earlier in this session (a scratch copy) holds nothing of value.
    if not d or ctx.new(d) then return nil end
    return "DROP DATABASE " .. d.name .. " deletes the whole database and every row in it"
  end,
}

-- Catalog #42. DROP SCHEMA … CASCADE drops every object in the schema, data included.
return {
  id = "drop-schema",
  severity = "P0", class = "DATA",
  summary = "DROP SCHEMA drops the schema, and with CASCADE every table, view and function in it",
  why = "With CASCADE, DROP SCHEMA drops every table (with its data), view, sequence, type and "
     .. "function in the schema, and whatever depends on them elsewhere, taking ACCESS EXCLUSIVE "
     .. "on every relation it drops. Without CASCADE it fails unless the schema is empty, but "
     .. "any search_path, grant or code that still names the schema breaks.",
  instead = "Drop the objects one by one after the deprecation steps for each (stop using them, "
     .. "deploy, back up, drop), then drop the empty schema without CASCADE.",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    if stmt.tag ~= "DROP SCHEMA" then return nil end
    for _, s in ipairs(stmt.objects) do
      -- A schema created earlier in this session holds only what this session put in it.
      if not ctx.new(s) then
        if stmt.cascade then
          return "DROP SCHEMA " .. s.name .. " CASCADE drops every table in it with its data, and "
              .. "everything else in it or depending on it"
        end
        return "DROP SCHEMA " .. s.name .. " breaks whatever still names it (search_path, grants, "
            .. "code); it fails if anything is left in it"
      end
    end
  end,
}

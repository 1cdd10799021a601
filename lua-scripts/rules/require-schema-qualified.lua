-- Catalog #60 (opt-in). An unqualified name means whatever search_path finds first.

local relations = { table = true, view = true, ["materialized view"] = true, sequence = true,
                    index = true }

return {
  id = "require-schema-qualified",
  severity = "P3", class = "STYLE",
  summary = "DDL names a table without its schema",
  why = "An unqualified name is resolved through search_path, which differs between roles, "
     .. "connection poolers, tools and environments: the same migration can create or change a "
     .. "table in another schema than intended, or miss the one it meant.",
  instead = "Write the schema every time: public.users, app.orders.",
  default = "off", strict = "warn",
  override = true,
  check = function(stmt, session, ctx)
    if not stmt.ddl then return nil end
    local t = stmt.tree
    -- A temporary table cannot take a schema: it always lives in pg_temp.
    if t.relation and t.relation.relpersistence == "t" then return nil end
    for _, o in ipairs(stmt.objects) do
      -- A new index always goes into its table's schema and cannot be qualified.
      local new_index = o.kind == "index" and o.created
      if relations[o.kind] and not o.schema and not new_index then
        return o.kind .. " " .. o.name .. " is not schema-qualified: it depends on search_path"
      end
    end
  end,
}

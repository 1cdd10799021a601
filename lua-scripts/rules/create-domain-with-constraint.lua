-- Catalog #23. A domain with a CHECK or NOT NULL makes later changes expensive: adding a column
-- of it rewrites the table, and changing its constraints locks every table that uses it.
return {
  id = "create-domain-with-constraint",
  severity = "P3", class = "STYLE",
  summary = "CREATE DOMAIN with a CHECK or NOT NULL makes later migrations lock and rewrite",
  why = "Every later ADD COLUMN of a constrained domain rewrites its table (add-column-constrained-"
     .. "domain), and every later change to the domain's constraints blocks writes to all the tables "
     .. "that use it while it scans them (alter-domain-add-constraint).",
  instead = "Use the base type, with a CHECK constraint on each column that needs it (added NOT VALID "
     .. "and validated later on existing tables).",
  default = "off", strict = "warn",
  override = true,
  check = function(stmt, session, ctx)
    if stmt.tag ~= "CREATE DOMAIN" then return nil end
    for _, c in ipairs(stmt.tree.constraints) do
      if c.contype == "CONSTR_CHECK" or c.contype == "CONSTR_NOTNULL" then
        return "domain " .. qualified(stmt.objects[1]) .. " has a "
               .. (c.contype == "CONSTR_CHECK" and "CHECK" or "NOT NULL")
               .. ": adding a column of it rewrites the table, changing it locks every user"
      end
    end
  end,
}

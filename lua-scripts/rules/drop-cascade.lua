-- Catalog #46. DROP … CASCADE silently drops whatever depends on the object.
return {
  id = "drop-cascade",
  severity = "P1", class = "DATA",
  summary = "DROP … CASCADE silently drops dependent views, foreign keys and even table columns",
  why = "CASCADE drops every object that depends on the dropped one, without listing them: views "
     .. "and materialized views built on a table, foreign keys that reference it, functions and "
     .. "defaults that use a type, and even table columns of a dropped type (DROP TYPE status "
     .. "CASCADE drops orders.status with its data). Each dependent relation is locked ACCESS "
     .. "EXCLUSIVE.",
  instead = "Drop without CASCADE (RESTRICT is the default): PostgreSQL then refuses and lists the "
     .. "dependents. Drop or change each of them explicitly first, then drop the object.",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    -- TRUNCATE … CASCADE is truncate-cascade's; REVOKE … CASCADE drops no objects.
    if not stmt.cascade or stmt.tag == "TRUNCATE TABLE" then return nil end
    if stmt.node == "DropOwnedStmt" then
      return "DROP OWNED … CASCADE drops every object the role owns and everything that depends "
          .. "on them, without listing them"
    elseif stmt.node == "DropStmt" then
      local old = {}
      for _, o in ipairs(stmt.objects) do
        -- Whatever depends on an object created earlier in this session is new as well.
        if o.dropped and not ctx.new(o) then old[#old + 1] = qualified(o) end
      end
      if #old == 0 then return nil end
      return stmt.tag .. " " .. table.concat(old, ", ") .. " CASCADE also drops everything that "
          .. "depends on " .. (#old == 1 and "it" or "them") .. " (views, foreign keys, columns…) "
          .. "without listing it"
    elseif stmt.node == "AlterTableStmt" then
      local t = stmt.objects[1]
      if not t or ctx.new(t) then return nil end
      for _, c in ipairs(stmt.subcommands) do
        if c.name == "DROP COLUMN" or c.name == "DROP CONSTRAINT" then
          return "ALTER TABLE " .. qualified(t) .. " " .. c.name .. " " .. (c.column or "?")
              .. " CASCADE also drops the views, constraints and foreign keys that depend on it"
        end
      end
    end
  end,
}

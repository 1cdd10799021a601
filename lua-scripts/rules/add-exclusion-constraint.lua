-- Catalog #20. ADD CONSTRAINT … EXCLUDE builds its index while the table is locked against
-- everything, and there is no NOT VALID or USING INDEX way around it.
return {
  id = "add-exclusion-constraint",
  severity = "P0", class = "REWRITE",
  summary = "ADD CONSTRAINT … EXCLUDE builds an index while it blocks reads and writes",
  why = "ALTER TABLE … ADD EXCLUDE takes ACCESS EXCLUSIVE and builds the constraint's index under it, "
     .. "reading the whole table: no reads or writes until the build ends. Exclusion constraints "
     .. "have no NOT VALID and no USING INDEX form, so there is no online way to add one.",
  instead = "No online path: create a new table with the constraint and backfill and swap it in, or "
     .. "enforce the rule in a trigger; on a small table, run it in a maintenance window.",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    if stmt.node ~= "AlterTableStmt" or stmt.tag ~= "ALTER TABLE" then return nil end
    local t = stmt.objects[1]
    -- Nothing reads the table; or it is new (created in this session, empty) or small.
    if not t.scan or ctx.new(t) or ctx.small(t) then return nil end
    for _, c in ipairs(stmt.subcommands) do
      if c.name == "ADD CONSTRAINT EXCLUDE" then
        return "ADD CONSTRAINT " .. (c.column and (c.column .. " ") or "") .. "EXCLUDE on "
               .. qualified(t) .. " builds its index while it blocks reads and writes"
               .. ctx.lock_note(t)
      end
    end
  end,
}

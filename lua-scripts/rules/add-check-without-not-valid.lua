-- Catalog #14. ADD CHECK without NOT VALID checks every row while it blocks the table; so does
-- a CHECK written inline in ADD COLUMN, which cannot be NOT VALID.
return {
  id = "add-check-without-not-valid",
  severity = "P0", class = "REWRITE",
  summary = "ADD CHECK without NOT VALID scans the whole table while it blocks reads and writes",
  why = "ALTER TABLE … ADD CHECK takes ACCESS EXCLUSIVE and reads every row to validate the new "
     .. "constraint: no reads or writes until the scan ends. An inline CHECK in ADD COLUMN does "
     .. "the same and cannot be NOT VALID.",
  instead = "ADD CONSTRAINT c CHECK (…) NOT VALID (instant; checks new rows only); then, in a "
     .. "later transaction, VALIDATE CONSTRAINT c, which takes SHARE UPDATE EXCLUSIVE: reads and "
     .. "writes go on.",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    if stmt.node ~= "AlterTableStmt" or stmt.tag ~= "ALTER TABLE" then return nil end
    local t = stmt.objects[1]
    -- Nothing reads the table; or it is new (created in this session, empty) or small.
    if not t.scan or ctx.new(t) or ctx.small(t) then return nil end
    for i, sub in ipairs(stmt.subcommands) do
      if sub.name == "ADD CONSTRAINT CHECK" and not sub.not_valid then
        return "ADD CONSTRAINT " .. (sub.column and (sub.column .. " ") or "") .. "CHECK on "
               .. qualified(t) .. " without NOT VALID scans the whole table while it blocks reads "
               .. "and writes" .. ctx.lock_note(t)
      end
      -- An inline constraint makes ADD COLUMN scan; the i-th sub-command is the i-th command
      -- of the parse tree.
      if sub.name == "ADD COLUMN" and sub.scan then
        for _, c in ipairs(stmt.tree.cmds[i].def.constraints) do
          if c.contype == "CONSTR_CHECK" then
            return { message = "ADD COLUMN " .. qualified(t) .. "." .. sub.column .. " with an inline "
                               .. "CHECK scans the whole table while it blocks reads and writes"
                               .. ctx.lock_note(t),
                     hint = "Add the column without the CHECK, then ADD CONSTRAINT … CHECK (…) "
                            .. "NOT VALID, then VALIDATE CONSTRAINT in a later transaction." }
          end
        end
      end
    end
  end,
}

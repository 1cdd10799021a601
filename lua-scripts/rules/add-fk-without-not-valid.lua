-- Catalog #15. ADD FOREIGN KEY without NOT VALID validates every row while it blocks writes to
-- both tables; an inline REFERENCES in ADD COLUMN cannot be NOT VALID.
return {
  id = "add-fk-without-not-valid",
  severity = "P0", class = "LOCK",
  summary = "ADD FOREIGN KEY without NOT VALID blocks writes to both tables while it scans",
  why = "Adding a foreign key takes SHARE ROW EXCLUSIVE on the table and on the table it "
     .. "references, then reads every row to check it: INSERT, UPDATE and DELETE on both tables "
     .. "wait until the scan ends. An inline REFERENCES in ADD COLUMN does the same and cannot be "
     .. "NOT VALID.",
  instead = "ADD CONSTRAINT fk FOREIGN KEY (…) REFERENCES … NOT VALID (instant; checks new rows "
     .. "only); then, in a later transaction, VALIDATE CONSTRAINT fk (SHARE UPDATE EXCLUSIVE on the "
     .. "table, ROW SHARE on the referenced one: writes go on).",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    if stmt.node ~= "AlterTableStmt" or stmt.tag ~= "ALTER TABLE" then return nil end
    local t = stmt.objects[1]
    -- Nothing reads the table; or it is new (created in this session, empty) or small.
    if not t.scan or ctx.new(t) or ctx.small(t) then return nil end
    for i, sub in ipairs(stmt.subcommands) do
      if sub.name == "ADD CONSTRAINT FOREIGN KEY" and not sub.not_valid then
        return "ADD CONSTRAINT " .. (sub.column and (sub.column .. " ") or "") .. "FOREIGN KEY on "
               .. qualified(t) .. " without NOT VALID blocks writes to it and to the referenced "
               .. "table while it scans" .. ctx.lock_note(t)
      end
      -- An inline constraint makes ADD COLUMN scan; the i-th sub-command is the i-th command
      -- of the parse tree.
      if sub.name == "ADD COLUMN" and sub.scan then
        for _, c in ipairs(stmt.tree.cmds[i].def.constraints) do
          if c.contype == "CONSTR_FOREIGN" then
            local r = c.pktable
            local parent = r.schemaname and (r.schemaname .. "." .. r.relname) or r.relname
            return { message = "ADD COLUMN " .. qualified(t) .. "." .. sub.column .. " REFERENCES "
                               .. parent .. " blocks writes to both tables while it scans"
                               .. ctx.lock_note(t),
                     hint = "Add the column without REFERENCES, then ADD CONSTRAINT … FOREIGN KEY "
                            .. "… NOT VALID, then VALIDATE CONSTRAINT in a later transaction." }
          end
        end
      end
    end
  end,
}

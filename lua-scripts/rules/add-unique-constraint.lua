-- Catalog #17. ADD CONSTRAINT … UNIQUE builds its index while the table is locked against
-- everything; so does an inline UNIQUE in ADD COLUMN.
return {
  id = "add-unique-constraint",
  severity = "P0", class = "REWRITE",
  summary = "ADD CONSTRAINT … UNIQUE builds an index while it blocks reads and writes",
  why = "ALTER TABLE … ADD UNIQUE takes ACCESS EXCLUSIVE and builds the unique index under it, "
     .. "reading and sorting the whole table: no reads or writes until the build ends. An inline "
     .. "UNIQUE in ADD COLUMN does the same.",
  instead = "CREATE UNIQUE INDEX CONCURRENTLY t_col_key ON t (col) (outside a transaction block); "
     .. "then ALTER TABLE t ADD CONSTRAINT t_col_key UNIQUE USING INDEX t_col_key (a brief lock).",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    if stmt.node ~= "AlterTableStmt" or stmt.tag ~= "ALTER TABLE" then return nil end
    local t = stmt.objects[1]
    -- Nothing reads the table; or it is new (created in this session, empty) or small.
    if not t.scan or ctx.new(t) or ctx.small(t) then return nil end
    for i, sub in ipairs(stmt.subcommands) do
      if sub.name == "ADD CONSTRAINT UNIQUE" then
        return "ADD CONSTRAINT " .. (sub.column and (sub.column .. " ") or "") .. "UNIQUE on "
               .. qualified(t) .. " builds its index while it blocks reads and writes"
               .. ctx.lock_note(t)
      end
      -- An inline constraint makes ADD COLUMN scan; the i-th sub-command is the i-th command
      -- of the parse tree.
      if sub.name == "ADD COLUMN" and sub.scan then
        for _, c in ipairs(stmt.tree.cmds[i].def.constraints) do
          if c.contype == "CONSTR_UNIQUE" then
            return { message = "ADD COLUMN " .. qualified(t) .. "." .. sub.column .. " UNIQUE builds "
                               .. "its index while it blocks reads and writes" .. ctx.lock_note(t),
                     hint = "Add the column without UNIQUE, CREATE UNIQUE INDEX CONCURRENTLY on it, "
                            .. "then ADD CONSTRAINT … UNIQUE USING INDEX." }
          end
        end
      end
    end
  end,
}

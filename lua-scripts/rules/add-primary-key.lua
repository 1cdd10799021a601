-- Catalog #18. ADD PRIMARY KEY builds its index, and checks its columns for NULLs, while the
-- table is locked against everything; so does an inline PRIMARY KEY in ADD COLUMN.
return {
  id = "add-primary-key",
  severity = "P0", class = "REWRITE",
  summary = "ADD PRIMARY KEY builds an index and scans for NULLs while it blocks reads and writes",
  why = "ALTER TABLE … ADD PRIMARY KEY takes ACCESS EXCLUSIVE, makes its columns NOT NULL (a full "
     .. "scan unless they already are) and builds the unique index (another scan and a sort): no "
     .. "reads or writes until both end. An inline PRIMARY KEY in ADD COLUMN does the same.",
  instead = "Make the columns NOT NULL first (a validated CHECK (col IS NOT NULL), then SET NOT "
     .. "NULL); CREATE UNIQUE INDEX CONCURRENTLY t_pkey_idx ON t (col); then ALTER TABLE t ADD "
     .. "CONSTRAINT t_pkey PRIMARY KEY USING INDEX t_pkey_idx (a brief lock).",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    if stmt.node ~= "AlterTableStmt" or stmt.tag ~= "ALTER TABLE" then return nil end
    local t = stmt.objects[1]
    -- Nothing reads the table; or it is new (created in this session, empty) or small.
    if not t.scan or ctx.new(t) or ctx.small(t) then return nil end
    for i, sub in ipairs(stmt.subcommands) do
      if sub.name == "ADD CONSTRAINT PRIMARY KEY" then
        return "ADD PRIMARY KEY on " .. qualified(t)
               .. " builds its index while it blocks reads and writes" .. ctx.lock_note(t)
      end
      -- An inline constraint makes ADD COLUMN scan; the i-th sub-command is the i-th command
      -- of the parse tree.
      if sub.name == "ADD COLUMN" and sub.scan then
        for _, c in ipairs(stmt.tree.cmds[i].def.constraints) do
          if c.contype == "CONSTR_PRIMARY" then
            return { message = "ADD COLUMN " .. qualified(t) .. "." .. sub.column .. " PRIMARY KEY "
                               .. "builds its index while it blocks reads and writes" .. ctx.lock_note(t),
                     hint = "Add the column, fill it and make it NOT NULL, CREATE UNIQUE INDEX "
                            .. "CONCURRENTLY on it, then ADD PRIMARY KEY USING INDEX." }
          end
        end
      end
    end
  end,
}

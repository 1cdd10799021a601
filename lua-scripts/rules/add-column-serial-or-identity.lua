-- Catalog #10. ADD COLUMN of a serial type or an IDENTITY column numbers every existing row.
local serial = {
  serial = true, serial4 = true, bigserial = true, serial8 = true, smallserial = true, serial2 = true,
}

return {
  id = "add-column-serial-or-identity",
  severity = "P0", class = "REWRITE",
  summary = "ADD COLUMN serial / GENERATED … AS IDENTITY rewrites the whole table",
  why = "A serial or identity column takes a value from a sequence for every existing row, so "
     .. "PostgreSQL rewrites the table and all its indexes under ACCESS EXCLUSIVE: no reads or "
     .. "writes until it is done.",
  instead = "ADD COLUMN id bigint (nullable, no default); CREATE SEQUENCE … OWNED BY the column; "
     .. "ALTER COLUMN id SET DEFAULT nextval(…) (catalog only); backfill in batches; then make it "
     .. "NOT NULL with a validated CHECK (id IS NOT NULL).",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    if stmt.node ~= "AlterTableStmt" or stmt.tag ~= "ALTER TABLE" then return nil end
    local t = stmt.objects[1]
    -- Nothing rewrites the table; or it is new (created in this session, empty) or small.
    if not t.rewrite or ctx.new(t) or ctx.small(t) then return nil end
    for i, sub in ipairs(stmt.subcommands) do
      -- The i-th sub-command is the i-th command of the parse tree.
      local col = sub.name == "ADD COLUMN" and sub.rewrite and stmt.tree.cmds[i].def
      if col then
        local names = col.type_name.names
        local what = #names == 1 and serial[names[1].sval] and names[1].sval
        for _, c in ipairs(col.constraints or {}) do
          if c.contype == "CONSTR_IDENTITY" then what = "GENERATED … AS IDENTITY" end
        end
        if what then
          return "ADD COLUMN " .. qualified(t) .. "." .. col.colname .. " " .. what
                 .. " numbers every row: the table is rewritten" .. ctx.lock_note(t)
        end
      end
    end
  end,
}

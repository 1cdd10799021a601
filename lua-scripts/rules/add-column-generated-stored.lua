-- Catalog #9. ADD COLUMN … GENERATED ALWAYS AS (…) STORED computes and writes every row.
return {
  id = "add-column-generated-stored",
  severity = "P0", class = "REWRITE",
  summary = "ADD COLUMN … GENERATED … STORED rewrites the whole table",
  why = "A stored generated column is computed for every existing row, so PostgreSQL rewrites the "
     .. "table and all its indexes under ACCESS EXCLUSIVE: no reads or writes until it is done. "
     .. "(PostgreSQL 18's VIRTUAL generated columns need no rewrite.)",
  instead = "Add a plain nullable column; fill it for new writes with a trigger; backfill the "
     .. "existing rows in batches. On PostgreSQL 18+, a VIRTUAL generated column.",
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
      for _, c in ipairs(col and col.constraints or {}) do
        -- A parser that knows PostgreSQL 18 marks VIRTUAL columns: those are free.
        if c.contype == "CONSTR_GENERATED" and c.generated_kind ~= "v" then
          return "ADD COLUMN " .. qualified(t) .. "." .. col.colname
                 .. " GENERATED … STORED rewrites the table" .. ctx.lock_note(t)
        end
      end
    end
  end,
}

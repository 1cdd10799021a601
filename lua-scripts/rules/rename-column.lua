-- Catalog #37. Renaming a column breaks the application version that still uses the old name.
return {
  id = "rename-column",
  severity = "P1", class = "COMPAT",
  summary = "RENAME COLUMN breaks the application version that is still running",
  why = "The rename itself is instant (a brief ACCESS EXCLUSIVE lock), but during a rolling "
     .. "deploy the old version of the app keeps reading and writing the old name, and ORMs that "
     .. "cached the column list fail too: every such query errors until the new version is out.",
  instead = "Expand and contract: add the new column, write both (app or trigger), backfill in "
     .. "batches, switch reads, stop writing the old one, then drop it in a later release. Or "
     .. "rename only in the ORM mapping and leave the database column alone.",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    if stmt.node ~= "RenameStmt" then return nil end
    local t = stmt.objects[1]
    -- No deployed code uses a table created earlier in this session.
    if not t or ctx.new(t) then return nil end
    for _, c in ipairs(stmt.subcommands) do
      if c.name == "RENAME COLUMN" then
        return "renaming " .. qualified(t) .. "." .. (c.column or "?") .. " to "
            .. (stmt.tree.newname or "?") .. " breaks the version of the app that still uses "
            .. (c.column or "the old name")
      end
    end
  end,
}

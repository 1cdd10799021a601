-- Catalog #62 (opt-in). Wide non-unique indexes rarely help queries and always cost writes.
local MAX_COLUMNS = 3

return {
  id = "too-many-index-columns",
  severity = "P3", class = "STYLE",
  summary = "A non-unique index on more than 3 columns",
  why = "A B-tree helps most through its leading columns; the later ones are seldom used by the "
     .. "planner, yet every INSERT and UPDATE pays to maintain them and the index takes more "
     .. "memory and disk. (A unique index needs all its columns, so it is not counted.)",
  instead = "Index the 1 to 3 leading columns the queries filter on; add INCLUDE (…) columns for "
     .. "index-only scans instead of key columns.",
  default = "off", strict = "warn",
  override = true,
  check = function(stmt, session, ctx)
    if stmt.node ~= "IndexStmt" or stmt.tree.unique then return nil end
    -- INCLUDE columns are listed apart (index_including_params) and not counted.
    local n = #stmt.tree.index_params
    if n > MAX_COLUMNS then
      return string.format("index on %s has %d key columns (more than %d)",
                           qualified(stmt.objects[1]), n, MAX_COLUMNS)
    end
  end,
}

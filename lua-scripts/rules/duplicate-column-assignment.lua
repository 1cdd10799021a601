-- Catalog #68. The same column named twice: PostgreSQL rejects the statement.

-- The column names a statement lists, each { name, part = assigns only a part (arr[1], c.f) }.
local function listed_columns(stmt)
  local t, out = stmt.tree, {}
  if t.node_type == "CreateStmt" then
    for _, e in ipairs(t.table_elts) do
      if e.node_type == "ColumnDef" then out[#out + 1] = { name = e.colname } end
    end
  elseif t.node_type == "ViewStmt" or t.node_type == "CreateTableAsStmt" then
    -- CREATE VIEW v (a, b) …, CREATE MATERIALIZED VIEW m (a, b) … and CREATE TABLE t (a, b) AS …
    for _, a in ipairs(t.aliases or t.into.col_names) do out[#out + 1] = { name = a.sval } end
  elseif t.node_type == "UpdateStmt" then
    for _, r in ipairs(t.target_list) do
      out[#out + 1] = { name = r.name, part = #r.indirection > 0 }
    end
  end
  return out
end

return {
  id = "duplicate-column-assignment",
  severity = "P2", class = "TX",
  summary = "The same column appears twice in CREATE TABLE, a view's column list or UPDATE … SET",
  why = "PostgreSQL rejects the statement (column specified more than once, multiple assignments "
     .. "to same column): the migration fails at this point, and in a transaction everything "
     .. "before it rolls back.",
  instead = "Remove the duplicate (check for names that differ only in case: unquoted names are "
     .. "folded to lower case).",
  default = "warn", strict = "deny",
  -- The server refuses the statement anyway: an inline override would change nothing.
  override = false,
  dml = true,   -- UPDATE reaches the rule too
  check = function(stmt, session, ctx)
    local count, whole = {}, {}
    for _, c in ipairs(listed_columns(stmt)) do
      count[c.name] = (count[c.name] or 0) + 1
      whole[c.name] = whole[c.name] or not c.part
      -- Several assignments to parts of one column (arr[1], arr[2]) are allowed.
      if count[c.name] > 1 and whole[c.name] then
        return "column " .. c.name .. " appears twice in " .. stmt.tag .. ": PostgreSQL rejects it"
      end
    end
  end,
}

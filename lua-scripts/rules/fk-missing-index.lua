-- Catalog #34 (opt-in). A new foreign key whose columns no index starts with.
--
-- ddlguard knows how many indexes a table has (facts), not on which columns, so this rule
-- counts the indexes it has seen this session create: CREATE INDEX, and the primary keys
-- and unique constraints of CREATE TABLE / ALTER TABLE. It notes every one it sees (by
-- table) and trusts it when this session created it: a named index found in
-- session.created, or a statement of the current transaction. Indexes made before this
-- session, or after the foreign key, are not seen.
local indexes, noted = {}, 0      -- table name as written → list of { by, sid, cols }

local function note(tbl, by, sid, cols)
  if #cols == 0 then return end
  if noted >= 5000 then indexes, noted = {}, 0 end   -- keep the memory bounded
  indexes[tbl] = indexes[tbl] or {}
  for _, e in ipairs(indexes[tbl]) do
    if e.sid == sid and e.by == by and table.concat(e.cols, ",") == table.concat(cols, ",") then
      return                                         -- the same statement, seen again
    end
  end
  table.insert(indexes[tbl], { by = by, sid = sid, cols = cols })
  noted = noted + 1
end

local function names(list)
  local out = {}
  for i = 1, #list do out[i] = list[i].sval end
  return out
end

-- Do the index columns start with the foreign key's columns (in any order)?
local function leads(index_cols, fk_cols)
  if #index_cols < #fk_cols then return false end
  local first = {}
  for i = 1, #fk_cols do first[index_cols[i]] = true end
  for _, c in ipairs(fk_cols) do
    if not first[c] then return false end
  end
  return true
end

-- A constraint of CREATE TABLE or ALTER TABLE: note its index or collect its foreign key.
-- `col` is set for a column constraint (whose columns are that column).
local function constraint(c, col, tbl, by, sid, fks)
  local cols = col and { col } or names(c.keys)
  if c.contype == "CONSTR_PRIMARY" or c.contype == "CONSTR_UNIQUE" then
    note(tbl, by, sid, cols)
  elseif c.contype == "CONSTR_FOREIGN" then
    fks[#fks + 1] = { cols = col and { col } or names(c.fk_attrs), ref = c.pktable }
  end
end

local function column(cd, tbl, by, sid, fks)
  for _, c in ipairs(cd.constraints) do constraint(c, cd.colname, tbl, by, sid, fks) end
end

-- Read the statement: note the indexes it creates, return the foreign keys it adds.
local function read(stmt)
  local tree, fks = stmt.tree, {}
  local t = stmt.objects[1]
  if not t then return fks end
  local tbl, sid = qualified(t), stmt.strict_id
  if stmt.node == "IndexStmt" and not tree.where_clause then
    local cols = {}
    for _, p in ipairs(tree.index_params) do
      if not p.name then break end                 -- an expression ends the usable prefix
      cols[#cols + 1] = p.name
    end
    local idx = stmt.objects[2]
    note(tbl, idx and qualified(idx), sid, cols)
  elseif stmt.node == "CreateStmt" then
    for _, e in ipairs(tree.table_elts) do
      if e.node_type == "ColumnDef" then column(e, tbl, tbl, sid, fks)
      elseif e.node_type == "Constraint" then constraint(e, nil, tbl, tbl, sid, fks) end
    end
  elseif stmt.node == "AlterTableStmt" then
    for _, cmd in ipairs(tree.cmds) do
      if cmd.subtype == "AT_AddColumn" then column(cmd.def, tbl, nil, sid, fks)
      elseif cmd.subtype == "AT_AddConstraint" then constraint(cmd.def, nil, tbl, nil, sid, fks) end
    end
  end
  return fks
end

local function created_here(entry, stmt, session)
  if entry.sid == stmt.strict_id then return true end                -- this very statement
  if entry.by and created_in_session(session, entry.by) then return true end
  for i = 1, #session.statements do
    if session.statements[i].strict_id == entry.sid then return true end
  end
  return false
end

return {
  id = "fk-missing-index",
  severity = "P2", class = "LOCK",
  summary = "A foreign key whose columns no index starts with",
  why = "PostgreSQL indexes the referenced side of a foreign key, not the referencing one. "
     .. "Without an index that starts with the referencing columns, every DELETE on the "
     .. "referenced table, and every update of its key, reads the whole referencing table (under "
     .. "the lock of that DELETE), and validating the key is slower too.",
  instead = "CREATE INDEX CONCURRENTLY … ON the referencing table (the foreign-key columns first), "
     .. "before adding the foreign key.",
  default = "off", strict = "warn",
  override = true,
  check = function(stmt, session, ctx)
    local fks = read(stmt)
    local tbl = stmt.objects[1] and qualified(stmt.objects[1])
    for _, fk in ipairs(fks) do
      local covered = false
      for _, entry in ipairs(indexes[tbl] or {}) do
        if leads(entry.cols, fk.cols) and created_here(entry, stmt, session) then covered = true end
      end
      if not covered then
        local cols = table.concat(fk.cols, ", ")
        local ref = (fk.ref.schemaname and fk.ref.schemaname .. "." or "") .. fk.ref.relname
        return { message = "foreign key " .. tbl .. " (" .. cols .. ") → " .. ref
                   .. ": no index known to start with (" .. cols .. "), so deletes on "
                   .. ref .. " read all of " .. tbl,
                 hint = "CREATE INDEX CONCURRENTLY ON " .. tbl .. " (" .. cols .. "), before "
                   .. "the foreign key (an index made after it, or before this session, is not "
                   .. "seen: lift the rule inline then)" }
      end
    end
  end,
}

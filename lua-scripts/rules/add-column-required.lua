-- Catalog #12. ADD COLUMN … NOT NULL with no DEFAULT fails on a table with rows, and where it
-- succeeds the running app's INSERTs, which do not name the column, fail. Dropping the default
-- right after adding the column with one (Django's DEFAULT x NOT NULL; … DROP DEFAULT) does
-- the same to the app.
local serial = {
  serial = true, serial4 = true, bigserial = true, serial8 = true, smallserial = true, serial2 = true,
}

-- Columns added NOT NULL with a DEFAULT, by the adding statement's strict_id, as a string
-- ("|accounts.plan|"), so a DROP DEFAULT later in the same transaction can find them through
-- session.statements. Bounded: the newest 500 such statements and the 500 before them.
local new, old, count = {}, {}, 0

local function remember(strict_id, names)
  if new[strict_id] == nil then count = count + 1 end
  new[strict_id] = names
  if count >= 500 then new, old, count = {}, new, 0 end
end

local function added_earlier(session, name)
  for _, s in ipairs(session.statements) do
    local names = new[s.strict_id] or old[s.strict_id]
    if names and string.find(names, "|" .. name .. "|", 1, true) then return true end
  end
  return false
end

-- What an ADD COLUMN definition says: NOT NULL? does every row get a value?
local function describe(col)
  local names = col.type_name.names
  local notnull, filled = false, #names == 1 and serial[names[1].sval] or false
  for _, c in ipairs(col.constraints) do
    if c.contype == "CONSTR_NOTNULL" or c.contype == "CONSTR_PRIMARY" then notnull = true end
    if c.contype == "CONSTR_DEFAULT" and not c.raw_expr.isnull then filled = true end
    if c.contype == "CONSTR_IDENTITY" or c.contype == "CONSTR_GENERATED" then filled = true end
  end
  return notnull, filled
end

return {
  id = "add-column-required",
  severity = "P1", class = "COMPAT",
  summary = "ADD COLUMN … NOT NULL without a DEFAULT fails, and breaks the running app's INSERTs",
  why = "Adding a NOT NULL column with no default fails outright on a table that has rows (it "
     .. "works on the empty development database). Where it succeeds, INSERTs from the version of the "
     .. "app that is still running do not name the new column and fail with a not-null violation.",
  instead = "Add the column nullable; or NOT NULL DEFAULT <constant> (no rewrite on PostgreSQL 11+) "
     .. "and keep the default until every running version of the app writes the column.",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    if stmt.node ~= "AlterTableStmt" or stmt.tag ~= "ALTER TABLE" then return nil end
    local t = stmt.objects[1]
    -- A table created in this session is empty and no running app uses it yet.
    if ctx.new(t) then return nil end
    local mine, found = "|", nil
    for i, sub in ipairs(stmt.subcommands) do
      if found then break end
      local name = qualified(t) .. "." .. (sub.column or "?")
      if sub.name == "ADD COLUMN" then
        -- The i-th sub-command is the i-th command of the parse tree.
        local notnull, filled = describe(stmt.tree.cmds[i].def)
        if notnull and not filled then
          found = "ADD COLUMN " .. name .. " NOT NULL has no DEFAULT: it fails if the table has rows, "
                  .. "and the running app's INSERTs fail"
        elseif notnull then
          mine = mine .. name .. "|"
        end
      elseif sub.name == "DROP DEFAULT" then
        if string.find(mine, "|" .. name .. "|", 1, true) or added_earlier(session, name) then
          found = { message = "DROP DEFAULT on " .. name .. ", just added NOT NULL: the running "
                              .. "app's INSERTs, which do not name it, fail",
                    hint = "Keep the default until every running version of the app writes the "
                           .. "column; drop it in a later release." }
        end
      end
    end
    if mine ~= "|" then remember(stmt.strict_id, mine) end
    return found
  end,
}

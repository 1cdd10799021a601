-- Catalog #64 (opt-in, configurable). New names must follow the team's convention.
-- To configure it, change PATTERN (a Lua pattern, not a regex) in a copy of the rule library:
-- ddlguard has no per-rule settings yet.
local PATTERN = "^[a-z_][a-z0-9_]*$"   -- lower-case snake_case

-- Objects whose names the convention covers (not operators, extensions, roles …).
local kinds = { table = true, index = true, sequence = true, view = true, ["materialized view"] = true,
                ["function"] = true, type = true, schema = true }

-- The names a statement gives: the objects it creates; the columns and constraints of
-- CREATE TABLE, CREATE TYPE … AS (…) and ALTER TABLE ADD; the trigger of CREATE TRIGGER,
-- the policy of CREATE POLICY; the new name of RENAME … TO. (Only these parts of the parse
-- tree are read: expressions and queries use names, they do not give them.)
local function new_names(stmt)
  local t, out = stmt.tree, {}
  local function add(name) if name then out[#out + 1] = name end end
  local function definition(d)   -- a ColumnDef or a Constraint
    add(d.colname or d.conname)
    for _, c in ipairs(d.constraints or {}) do add(c.conname) end
  end
  for _, o in ipairs(stmt.objects) do
    if o.created and kinds[o.kind] then add(o.name) end
  end
  for _, e in ipairs(t.table_elts or t.coldeflist or {}) do definition(e) end
  for _, c in ipairs(t.cmds or {}) do
    if c.subtype == "AT_AddColumn" or c.subtype == "AT_AddConstraint" then definition(c.def) end
  end
  if t.node_type == "CreateTrigStmt" then add(t.trigname) end
  if t.node_type == "CreatePolicyStmt" then add(t.policy_name) end
  if t.node_type == "RenameStmt" then add(t.newname) end
  return out
end

return {
  id = "naming-convention",
  severity = "P3", class = "STYLE",
  summary = "A new name does not follow the naming convention",
  why = "Names that mix conventions (CamelCase that must be quoted forever, stray prefixes, "
     .. "spaces) make every query and tool harder to write and review, and once deployed they are "
     .. "costly to rename (renames break the running app).",
  instead = "Rename it before it is deployed, to match " .. PATTERN .. " (unquoted lower-case "
     .. "snake_case by default).",
  default = "off", strict = "warn",
  override = true,
  check = function(stmt, session, ctx)
    if not stmt.ddl then return nil end
    for _, name in ipairs(new_names(stmt)) do
      if not string.find(name, PATTERN) then
        return "name \"" .. name .. "\" does not follow the naming convention " .. PATTERN
      end
    end
  end,
}

-- Catalog #64 (opt-in, configurable). New names must follow the team's convention.
-- To configure it, change PATTERN (a Lua pattern, not a regex) in a copy of the rule library:
-- ddlguard has no per-rule settings yet.
local PATTERN = "^[a-z_][a-z0-9_]*$"   -- lower-case snake_case

-- Objects whose names the convention covers (not operators, extensions, roles …).
local kinds = { table = true, index = true, sequence = true, view = true, ["materialized view"] = true,
                ["function"] = true, type = true, schema = true }
-- Fields of the parse tree that hold a name being given: column, constraint, trigger and
-- policy names, and the new name of RENAME … TO.
local name_fields = { colname = true, conname = true, trigname = true, policy_name = true,
                      newname = true }

-- The names a statement gives.
local function new_names(stmt)
  local out = {}
  for _, o in ipairs(stmt.objects) do
    if o.created and kinds[o.kind] then out[#out + 1] = o.name end
  end
  local function walk(node)
    for k, v in pairs(node) do
      if type(v) == "userdata" then walk(v)
      elseif name_fields[k] then out[#out + 1] = v end
    end
  end
  walk(stmt.tree)
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

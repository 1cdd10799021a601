-- Catalog #64 (opt-in, configurable). New names must follow the team's convention.
-- To configure it, copy this file and change PATTERN (a Lua pattern, not a regex): ddlguard
-- has no per-rule settings yet.
local PATTERN = "^[a-z_][a-z0-9_]*$"   -- lower-case snake_case

-- The names a statement gives: the objects it creates, and the columns, constraints and
-- new names (RENAME … TO) anywhere in its parse tree.
local function new_names(stmt)
  local out = {}
  for _, o in ipairs(stmt.objects) do
    if o.created then out[#out + 1] = o.name end
  end
  local function walk(node)
    for k, v in pairs(node) do
      if type(v) == "userdata" then walk(v)
      elseif k == "colname" or k == "conname" or k == "newname" then out[#out + 1] = v end
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

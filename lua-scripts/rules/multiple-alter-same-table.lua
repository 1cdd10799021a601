-- Catalog #61 (opt-in). Each ALTER TABLE takes the table's lock (and maybe a scan) once more.
-- The earlier statements of the transaction are known only by their text, so the table an
-- earlier ALTER TABLE changed is read from it.

-- Looking back over every earlier statement for every statement would make a long
-- transaction quadratic: look at the last LOOK_BACK guarded statements only.
local LOOK_BACK = 200

-- "app.users" from "/* … */ ALTER TABLE IF EXISTS ONLY app.users …", in lower case.
local function altered_table(text)
  local s = string.lower(text):gsub("/%*.-%*/", ""):gsub("%-%-[^\n]*", "")
  local rest = string.match(s, "^%s*alter%s+table%s+(.*)")
  if not rest then return nil end
  rest = rest:gsub("^if%s+exists%s+", ""):gsub("^only%s+", "")
  local name = string.gsub(string.match(rest, '^[%w_$%."]+') or "", '"', "")
  return name
end

return {
  id = "multiple-alter-same-table",
  severity = "P3", class = "STYLE",
  summary = "Several ALTER TABLE statements on the same table in one transaction",
  why = "Every ALTER TABLE queues for the table's lock again, and each one that validates or "
     .. "rewrites reads the whole table again; one ALTER TABLE with several sub-commands takes the "
     .. "lock once and does all the work in a single pass.",
  instead = "Combine them into one statement: ALTER TABLE t ADD COLUMN a …, ADD COLUMN b …, "
     .. "ALTER COLUMN c SET DEFAULT ….",
  default = "off", strict = "warn",
  override = true,
  check = function(stmt, session, ctx)
    local t = stmt.objects[1]
    -- Locking a table created earlier in this session costs nothing.
    if stmt.tag ~= "ALTER TABLE" or not t or ctx.new(t) then return nil end
    for _, c in ipairs(stmt.subcommands) do
      -- VALIDATE belongs in a transaction of its own (validate-in-same-transaction), not merged.
      if c.name == "VALIDATE CONSTRAINT" then return nil end
    end
    local name, n = string.lower(qualified(t)), #session.statements
    for i = n, math.max(1, n - LOOK_BACK + 1), -1 do
      local s = session.statements[i]
      if s.tag == "ALTER TABLE" and altered_table(s.text) == name then
        return "another ALTER TABLE on " .. qualified(t)
            .. " in this transaction: combine them into one ALTER TABLE"
      end
    end
  end,
}

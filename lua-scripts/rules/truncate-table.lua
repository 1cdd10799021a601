-- Catalog #44. TRUNCATE of an existing table deletes all of its rows.
return {
  id = "truncate-table",
  severity = "P0", class = "DATA",
  summary = "TRUNCATE deletes every row of an existing table",
  why = "TRUNCATE replaces the table with a new, empty file under ACCESS EXCLUSIVE: all rows are "
     .. "gone at COMMIT, no trigger sees them go, and only a backup brings them back. While it "
     .. "waits for its lock, every query on the table queues behind it.",
  instead = "If emptying the table is really intended, DELETE in batches (which other sessions can "
     .. "run alongside) after a backup; or drop the table in a later release once nothing uses it.",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    if stmt.tag ~= "TRUNCATE TABLE" then return nil end
    local old = {}
    for _, o in ipairs(stmt.objects) do
      -- A table created earlier in this session holds only what this session put in it.
      if not ctx.new(o) then old[#old + 1] = qualified(o) end
    end
    if #old == 0 then return nil end
    return "TRUNCATE deletes every row of " .. table.concat(old, ", ")
  end,
}

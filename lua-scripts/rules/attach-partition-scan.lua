-- Catalog #27. ATTACH PARTITION scans the attached table under ACCESS EXCLUSIVE.
return {
  id = "attach-partition-scan",
  severity = "P1", class = "LOCK",
  summary = "ATTACH PARTITION locks the attached table and scans it to check the partition bound",
  why = "ATTACH PARTITION takes SHARE UPDATE EXCLUSIVE on the parent (PostgreSQL 12+) but ACCESS "
     .. "EXCLUSIVE on the table being attached, which it reads in full to check that every row fits "
     .. "the bound, unless a validated CHECK constraint already proves it. If the parent has a DEFAULT "
     .. "partition, that one is locked and scanned too, for rows that belong to the new partition.",
  instead = "Before attaching, add a CHECK constraint that matches the bound: ADD CONSTRAINT … CHECK "
     .. "(…) NOT VALID, then VALIDATE CONSTRAINT in its own transaction (reads and writes go on); the "
     .. "ATTACH then skips the scan, and the CHECK can be dropped afterwards. Keep the DEFAULT "
     .. "partition empty, or give it a CHECK that excludes the new range.",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    -- ALTER INDEX … ATTACH PARTITION only links two indexes: no scan.
    if stmt.tag ~= "ALTER TABLE" then return nil end
    local parent, part = stmt.objects[1], stmt.objects[2]
    for _, c in ipairs(stmt.subcommands) do
      if c.name == "ATTACH PARTITION" and parent and part then
        -- A table created earlier in this session is empty: its scan costs nothing.
        if ctx.new(parent) or ctx.new(part) or ctx.small(part) then return nil end
        return "ATTACH PARTITION " .. qualified(part) .. " to " .. qualified(parent) .. " locks "
            .. qualified(part) .. " and reads all of it to check the partition bound (unless a "
            .. "validated CHECK constraint matches it)" .. ctx.lock_note(part)
      end
    end
  end,
}

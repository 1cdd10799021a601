-- Catalog #51 (opt-in advisory). A new unique index or constraint on existing rows depends on
-- the data: it fails on duplicates, and old-app inserts of duplicates start failing.
return {
  id = "add-uniqueness-data-dependent",
  severity = "P2", class = "DATA",
  summary = "A new UNIQUE index or constraint on an existing table fails if the data has duplicates",
  why = "Whether the statement works depends on the rows: with one duplicate it fails (and CREATE "
     .. "UNIQUE INDEX CONCURRENTLY leaves an INVALID index behind that still slows every write). "
     .. "Once it is in place, the running app's inserts of duplicate values start failing.",
  instead = "First deploy code that no longer writes duplicates; check for them (SELECT cols, count(*) "
     .. "… GROUP BY cols HAVING count(*) > 1) and clean them up; then CREATE UNIQUE INDEX CONCURRENTLY "
     .. "and, for a constraint, ADD CONSTRAINT … UNIQUE USING INDEX.",
  default = "off", strict = "warn",
  override = true,
  check = function(stmt, session, ctx)
    local t = stmt.objects[1]
    -- A table created earlier in this session has no old rows and no old app writing it.
    if not t or ctx.new(t) then return nil end
    if stmt.tag == "CREATE INDEX" and stmt.tree.unique then
      return "unique index on " .. qualified(t) .. " fails if existing rows have duplicates"
    end
    for _, c in ipairs(stmt.subcommands) do
      -- USING INDEX reuses a unique index that already exists: the data is known to be unique.
      if c.name == "ADD CONSTRAINT UNIQUE" or c.name == "ADD CONSTRAINT PRIMARY KEY" then
        return c.name .. " on " .. qualified(t) .. " fails if existing rows have duplicates"
      end
    end
  end,
}

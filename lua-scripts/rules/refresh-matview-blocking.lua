-- Catalog #25. A plain REFRESH MATERIALIZED VIEW locks every reader out until it ends.
return {
  id = "refresh-matview-blocking",
  severity = "P1", class = "LOCK",
  summary = "REFRESH MATERIALIZED VIEW without CONCURRENTLY blocks every SELECT on the view",
  why = "A plain REFRESH takes ACCESS EXCLUSIVE on the materialized view and keeps it while the "
     .. "view's whole query runs and its result is written to a new file: every SELECT on the view "
     .. "waits until the refresh ends. WITH NO DATA empties the view, and SELECTs on it then fail "
     .. "until the next refresh.",
  instead = "REFRESH MATERIALIZED VIEW CONCURRENTLY … (needs a UNIQUE index on the view on plain "
     .. "columns, without WHERE, and a view that is already populated); it takes EXCLUSIVE, so "
     .. "reads go on while it runs.",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    if stmt.tag ~= "REFRESH MATERIALIZED VIEW" or stmt.concurrently then return nil end
    local v = stmt.objects[1]
    -- A view created earlier in this session has no readers yet. Small views are not
    -- exempt: the lock lasts as long as the view's query, whatever the size of its result.
    if not v or ctx.new(v) then return nil end
    if stmt.tree.skip_data then
      return "REFRESH MATERIALIZED VIEW " .. qualified(v) .. " WITH NO DATA empties the view: "
          .. "every SELECT on it fails until it is refreshed again"
    end
    return "REFRESH MATERIALIZED VIEW " .. qualified(v) .. " blocks every SELECT on it until the "
        .. "refresh ends" .. ctx.lock_note(v)
  end,
}

-- Catalog #35. CREATE INDEX / REINDEX CONCURRENTLY can corrupt indexes on PostgreSQL 14.0–14.3.
--
-- ddlguard does not give policies the server's version today. The rule reads
-- session.server_version (e.g. "14.2") and judges exactly when it is there; without it, it
-- can only remind, so it is off in the default profile and warns in strict.
local function affected(version)
  local major, minor = string.match(version, "^(%d+)%.(%d+)")
  return major == "14" and tonumber(minor) <= 3
end

return {
  id = "concurrent-index-pg14-bug",
  severity = "P1", class = "DATA",
  summary = "CREATE INDEX / REINDEX CONCURRENTLY can silently corrupt the index on PostgreSQL 14.0–14.3",
  why = "PostgreSQL 14.0 to 14.3 have a bug (fixed in 14.4) by which an index built or rebuilt "
     .. "CONCURRENTLY can miss rows written during the build: queries that use it return wrong "
     .. "results, and unique indexes stop enforcing uniqueness. Nothing reports it.",
  instead = "Upgrade the server to 14.4 or later first. Then check indexes built concurrently on "
     .. "14.0–14.3 with amcheck (or pg_amcheck --heapallindexed) and REINDEX the broken ones.",
  default = "off", strict = "warn",
  override = true,
  check = function(stmt, session, ctx)
    if not stmt.concurrently or (stmt.tag ~= "CREATE INDEX" and stmt.tag ~= "REINDEX") then
      return nil
    end
    local t = stmt.objects[1]
    -- Nothing writes to a table created earlier in this session while the index builds.
    if t and ctx.new(t) then return nil end
    local what = stmt.tag .. " CONCURRENTLY" .. (t and " on " .. qualified(t) or "")
    local version = session.server_version
    if version == nil then
      return what .. ": ddlguard does not know the server's version, and on PostgreSQL "
          .. "14.0–14.3 this can silently corrupt the index"
    end
    if affected(version) then
      return what .. " on PostgreSQL " .. version .. " can silently corrupt the index"
    end
  end,
}

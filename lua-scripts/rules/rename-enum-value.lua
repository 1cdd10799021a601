-- Catalog #48. Renaming an enum value breaks every running client that still uses the old label.
return {
  id = "rename-enum-value",
  severity = "P1", class = "COMPAT",
  summary = "ALTER TYPE … RENAME VALUE breaks the app version that still uses the old label",
  why = "No table is locked, but the old label is gone at once: the running version of the app "
     .. "still writes and compares it, and every such INSERT, UPDATE or WHERE fails with "
     .. "\"invalid input value for enum\".",
  instead = "ALTER TYPE … ADD VALUE 'new' AFTER 'old' in one release; move the data (in batches) "
     .. "and the code to 'new'; stop using 'old' (an enum value cannot be dropped: leave it unused).",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    if stmt.node ~= "AlterEnumStmt" then return nil end
    local t, e = stmt.objects[1], stmt.tree
    -- old_val is set only for RENAME VALUE; a type created in this session has no users yet.
    if not e.old_val or (t and ctx.new(t)) then return nil end
    return string.format("renaming value '%s' of %s to '%s' breaks clients that still use '%s'",
                         e.old_val, t and qualified(t) or "the type", e.new_val, e.old_val)
  end,
}

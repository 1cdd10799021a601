-- Catalog #49. A value added without BEFORE/AFTER sorts last, which changes range comparisons.
return {
  id = "enum-value-ordering",
  severity = "P3", class = "STYLE",
  summary = "ALTER TYPE … ADD VALUE without BEFORE/AFTER puts the new value last in the sort order",
  why = "Enum values compare by their position, not by name. A value appended at the end sorts "
     .. "after all the others, so queries such as status < 'approved' or ORDER BY status silently "
     .. "change meaning when the new value belongs in the middle.",
  instead = "Say where the value belongs: ALTER TYPE … ADD VALUE 'x' BEFORE 'y' (or AFTER 'y'); "
     .. "write AFTER the current last value when it really belongs at the end.",
  default = "off", strict = "warn",
  override = true,
  check = function(stmt, session, ctx)
    if stmt.node ~= "AlterEnumStmt" then return nil end
    local t, e = stmt.objects[1], stmt.tree
    -- RENAME VALUE has old_val; BEFORE/AFTER sets new_val_neighbor. A type created in this
    -- session has no queries that depend on its order yet.
    if e.old_val or e.new_val_neighbor or (t and ctx.new(t)) then return nil end
    return string.format("value '%s' is added at the end of %s: give its place with BEFORE or AFTER",
                         e.new_val or "?", t and qualified(t) or "the type")
  end,
}

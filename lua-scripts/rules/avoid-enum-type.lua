-- Catalog #58 (opt-in). Enum types are easy to add to and hard to change in any other way.
return {
  id = "avoid-enum-type",
  severity = "P3", class = "STYLE",
  summary = "CREATE TYPE … AS ENUM: consider a lookup table instead",
  why = "An enum value can be added but never removed, reordering needs a new type, a renamed "
     .. "value breaks running clients, nothing else can be attached to a value (a label, an "
     .. "\"active\" flag), and a value added in a transaction cannot be used before it commits.",
  instead = "A lookup table (CREATE TABLE order_statuses (status text PRIMARY KEY, …)) referenced by "
     .. "a foreign key, or a text column with a CHECK (status IN (…)) that can be replaced later.",
  default = "off", strict = "warn",
  override = true,
  check = function(stmt, session, ctx)
    if stmt.node ~= "CreateEnumStmt" then return nil end
    return "enum type " .. qualified(stmt.objects[1]) .. ": its values cannot be removed or carry data; "
        .. "consider a lookup table"
  end,
}

-- Catalog #47. DROP NOT NULL changes a contract that the readers of the column rely on.
return {
  id = "drop-not-null",
  severity = "P2", class = "COMPAT",
  summary = "ALTER COLUMN … DROP NOT NULL lets NULLs reach readers that never expected them",
  why = "The statement itself is instant (a brief ACCESS EXCLUSIVE lock), but every reader written "
     .. "for the old contract (the running app, reports, PL/pgSQL, downstream exports) may now get "
     .. "NULLs and fail or compute wrong results.",
  instead = "Keep the column NOT NULL and store a marker value (e.g. '' or 0) for \"unknown\", or add "
     .. "a new nullable column (or table) and move readers to it before retiring the old one.",
  default = "warn", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    if stmt.tag ~= "ALTER TABLE" then return nil end
    local t = stmt.objects[1]
    -- Nobody reads a table created earlier in this session yet.
    if not t or ctx.new(t) then return nil end
    for _, c in ipairs(stmt.subcommands) do
      if c.name == "DROP NOT NULL" then
        return "DROP NOT NULL on " .. qualified(t) .. "." .. (c.column or "?")
            .. ": readers written for the old contract may now get NULLs"
      end
    end
  end,
}

-- Catalog #8. ADD COLUMN with a volatile DEFAULT computes a value per row: a full rewrite.
-- A constant or STABLE default (0, 'x', now(), CURRENT_TIMESTAMP) is stored in the catalog
-- and costs nothing on PostgreSQL 11+.

-- Volatile functions seen in column defaults.
local volatile = {
  random = true, random_normal = true, gen_random_uuid = true, gen_random_bytes = true,
  uuid_generate_v1 = true, uuid_generate_v1mc = true, uuid_generate_v4 = true, uuidv4 = true,
  uuidv7 = true, clock_timestamp = true, timeofday = true, nextval = true,
}
-- Built-in functions that are not volatile (IMMUTABLE or STABLE): evaluated once.
local fixed = {
  now = true, transaction_timestamp = true, statement_timestamp = true, current_setting = true,
  lower = true, upper = true, btrim = true, ltrim = true, rtrim = true, concat = true, concat_ws = true,
  format = true, length = true, md5 = true, replace = true, substr = true, substring = true,
  left = true, right = true, split_part = true, to_char = true, to_date = true, to_timestamp = true,
  to_json = true, to_jsonb = true, json_build_object = true, jsonb_build_object = true,
  json_build_array = true, jsonb_build_array = true, array_fill = true, make_date = true,
  make_time = true, make_interval = true, make_timestamp = true, make_timestamptz = true,
  date_trunc = true, date_part = true, extract = true, timezone = true, age = true, abs = true,
  round = true, floor = true, ceil = true, ceiling = true, uuid_nil = true,
  uuid_generate_v3 = true, uuid_generate_v5 = true,
}

-- Names of the functions an expression calls, anywhere inside it.
local function calls(node, out)
  if type(node) ~= "userdata" then return out end
  if node.node_type == "FuncCall" then
    local names = node.funcname
    local schema = #names > 1 and names[1].sval or nil
    out[#out + 1] = { name = names[#names].sval, builtin = schema == nil or schema == "pg_catalog" }
  end
  for _, v in pairs(node) do calls(v, out) end
  return out
end

return {
  id = "add-column-volatile-default",
  severity = "P0", class = "REWRITE",
  summary = "ADD COLUMN with a volatile DEFAULT rewrites the whole table",
  why = "A volatile default (random(), gen_random_uuid(), clock_timestamp(), nextval(), a VOLATILE "
     .. "user function) gives every existing row its own value, so PostgreSQL rewrites the table and "
     .. "all its indexes under ACCESS EXCLUSIVE: no reads or writes until it is done. (Before "
     .. "PostgreSQL 11 any non-NULL default rewrites.)",
  instead = "ADD COLUMN without a default; ALTER COLUMN … SET DEFAULT <expr> (catalog only, applies "
     .. "to new rows); backfill the existing rows in batches.",
  default = "deny", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    if stmt.node ~= "AlterTableStmt" or stmt.tag ~= "ALTER TABLE" then return nil end
    local t = stmt.objects[1]
    -- A table created in this session is empty; a small one rewrites in no time.
    if ctx.new(t) or ctx.small(t) then return nil end
    for i, sub in ipairs(stmt.subcommands) do
      -- The i-th sub-command is the i-th command of the parse tree.
      local col = sub.name == "ADD COLUMN" and stmt.tree.cmds[i].def
      for _, c in ipairs(col and col.constraints or {}) do
        if c.contype == "CONSTR_DEFAULT" then
          for _, f in ipairs(calls(c.raw_expr, {})) do
            local where = qualified(t) .. "." .. col.colname
            if f.builtin and volatile[f.name] then
              return "ADD COLUMN " .. where .. " DEFAULT " .. f.name .. "() rewrites the table"
                     .. ctx.lock_note(t)
            elseif not (f.builtin and fixed[f.name]) then
              return { message = "ADD COLUMN " .. where .. " DEFAULT calls " .. f.name
                         .. "(): if it is VOLATILE this rewrites the table" .. ctx.lock_note(t),
                       hint = "If " .. f.name .. "() is STABLE or IMMUTABLE there is no rewrite: "
                         .. "override this rule inline. Otherwise add the column without a default, "
                         .. "SET DEFAULT, and backfill in batches." }
            end
          end
        end
      end
    end
  end,
}

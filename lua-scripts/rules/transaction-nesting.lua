-- Catalog #65. Transaction control inside the migration's transaction ends it early or fails.
-- ddlguard does not pass BEGIN, COMMIT and ROLLBACK themselves to the rules (see
-- docs/rules/transaction-nesting.md), so this rule sees the one form that reaches it: a DO
-- block that runs COMMIT or ROLLBACK while a transaction block is open.

-- The body of a DO block, in lower case.
local function do_body(stmt)
  for _, a in ipairs(stmt.tree.args) do
    if a.defname == "as" then return string.lower(a.arg.sval) end
  end
  return ""
end

return {
  id = "transaction-nesting",
  severity = "P2", class = "TX",
  summary = "COMMIT or ROLLBACK inside a transaction that the migration (or its tool) opened",
  why = "A migration whose statements end the surrounding transaction breaks the tool's "
     .. "bookkeeping: what follows runs outside it, and a failure leaves the migration half "
     .. "applied. Inside a transaction block a DO block cannot COMMIT at all: it fails with "
     .. "\"invalid transaction termination\" and the whole migration rolls back.",
  instead = "One transaction per migration, owned either by the tool or by the file. Batch work "
     .. "that must COMMIT between batches belongs in a migration that runs outside a transaction "
     .. "(Rails disable_ddl_transaction!, Django atomic = False, Flyway/Atlas non-transactional mode).",
  default = "warn", strict = "deny",
  override = true,
  check = function(stmt, session, ctx)
    if stmt.node ~= "DoStmt" or not ctx.in_transaction then return nil end
    local body = do_body(stmt)
    for _, word in ipairs({ "commit", "rollback" }) do
      if string.find(body, "%f[%w_]" .. word .. "%f[^%w_]") then
        return "DO block runs " .. string.upper(word) .. " inside a transaction block: it fails "
            .. "with \"invalid transaction termination\""
      end
    end
  end,
}

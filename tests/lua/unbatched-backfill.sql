-- Plain UPDATE/DELETE reach the rules only when a policy sets see_dml = true; these cases
-- use statements ddlguard passes on anyway (a function call in a sub-select).
-- case: deny
UPDATE accounts SET balance = (SELECT coalesce(sum(amount), 0) FROM ledger l WHERE l.account_id = accounts.id);
-- case: deny
UPDATE app.users SET email_lower = (SELECT lower(u.email) FROM app.users u WHERE u.id = users.id)
WHERE email_lower IS NULL;
-- case: deny
DELETE FROM audit_log WHERE actor IN (SELECT lower(name) FROM retired_users) OR id > 1000;
-- case: pass
-- One batch of the safe alternative: a key range.
UPDATE accounts SET balance = (SELECT coalesce(sum(amount), 0) FROM ledger l WHERE l.account_id = accounts.id)
WHERE id >= 1 AND id < 10001;
-- case: pass
UPDATE app.users SET email_lower = (SELECT lower(u.email) FROM app.users u WHERE u.id = users.id)
WHERE id IN (SELECT id FROM app.users WHERE email_lower IS NULL ORDER BY id LIMIT 5000);
-- case: pass
WITH batch AS (SELECT id FROM app.users WHERE email_lower IS NULL LIMIT 5000)
UPDATE app.users SET email_lower = (SELECT lower(email)) FROM batch WHERE users.id = batch.id;
-- case: pass
CREATE TABLE accounts_copy (id bigint, balance numeric);
UPDATE accounts_copy SET balance = (SELECT coalesce(sum(amount), 0) FROM ledger l WHERE l.account_id = accounts_copy.id);
-- case: pass
DELETE FROM audit_log WHERE id BETWEEN 1 AND 5000 AND actor IN (SELECT lower(name) FROM retired_users);
-- case: pass
-- A migration tool's own bookkeeping (shown here with a sub-select so that it reaches the rule).
UPDATE alembic_version SET version_num = (SELECT lower('AE1027A6ACF')) WHERE alembic_version.version_num = '1975ea83b712';

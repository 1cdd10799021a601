-- case: deny
ALTER TABLE users RENAME TO accounts;
-- case: deny
BEGIN;
ALTER TABLE IF EXISTS app.users RENAME TO customers;
CREATE VIEW app.users AS SELECT * FROM app.customers;
COMMIT;
-- case: deny
ALTER TABLE app.users SET SCHEMA legacy;
-- case: deny
ALTER VIEW active_users RENAME TO current_users;
-- case: pass
ALTER INDEX users_email_idx RENAME TO users_email_key;
-- case: pass
CREATE TABLE users_next (LIKE users INCLUDING ALL);
ALTER TABLE users_next RENAME TO users_v2;
-- case: pass
ALTER TABLE users RENAME COLUMN email TO mail;

-- case: warn
CREATE TABLE app."UserAccounts" (id bigint);
-- case: warn
ALTER TABLE app.accounts ADD COLUMN "createdAt" timestamptz;
-- case: deny
ALTER TABLE app.accounts ADD CONSTRAINT "Accounts-Email-Unique" UNIQUE (email);
-- case: deny
ALTER TABLE app.accounts RENAME COLUMN email TO "eMail";
-- case: pass
CREATE TABLE app.UserAccounts (Id bigint, CreatedAt timestamptz, CONSTRAINT user_accounts_pk PRIMARY KEY (Id));
-- case: pass
CREATE INDEX CONCURRENTLY accounts_email_idx ON app."LegacyAccounts" ("Email");
-- case: pass
ALTER TABLE app.accounts RENAME TO accounts_v2;
-- case: warn
CREATE TRIGGER "AuditOrders" AFTER INSERT ON app.orders FOR EACH ROW EXECUTE FUNCTION app.audit();
-- case: pass
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
CREATE OPERATOR app.<-> (leftarg = point, rightarg = point, function = app.point_distance);

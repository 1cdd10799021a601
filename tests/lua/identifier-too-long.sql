-- case: warn
CREATE INDEX CONCURRENTLY index_subscriptions_on_account_id_and_plan_id_and_created_at_desc ON subscriptions (account_id, plan_id, created_at DESC);
-- case: warn
ALTER TABLE app.subscriptions ADD CONSTRAINT "Subscriptions_Account_Plan_Created_At_Unique_Key_Constraint_Version_2" UNIQUE (account_id, plan_id, created_at);
-- case: deny
CREATE TABLE app.notifications (id bigint, delivered_to_the_primary_mobile_device_of_the_recipient_at_utc_time timestamptz);
-- case: pass
CREATE INDEX CONCURRENTLY subscriptions_account_plan_created ON subscriptions (account_id, plan_id, created_at DESC);
-- case: pass
CREATE TABLE app.notifications (id bigint, delivered_to_the_primary_mobile_device_of_recipient_at timestamptz);
-- case: pass
COMMENT ON TABLE app.notifications IS 'one row per notification that was sent to some device of the recipient, in any channel';
-- case: pass
ALTER TABLE app.notifications ADD COLUMN note text DEFAULT 'a default that is exactly sixty-three bytes long, one two three';
-- case: warn
CREATE TABLE "app"."Customer Accounts Imported From The Legacy Billing System In 2019 Q3" (id bigint);
-- case: pass
CREATE TABLE app.imports (id bigint, source text DEFAULT 'https://legacy.example.com/billing/export/customer-accounts-imported-2019-q3.csv');
-- case: pass
CREATE FUNCTION app.f() RETURNS text LANGUAGE sql AS $$ SELECT 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' $$;

-- case: deny
ALTER TABLE accounts ADD COLUMN plan text NOT NULL;
-- case: deny
ALTER TABLE app.accounts ADD COLUMN note text, ADD COLUMN region text DEFAULT NULL NOT NULL;
-- case: deny
-- Django's pattern: add with a default, then drop it in the same migration.
BEGIN;
ALTER TABLE "accounts" ADD COLUMN "plan" varchar(20) DEFAULT 'free' NOT NULL;
ALTER TABLE "accounts" ALTER COLUMN "plan" DROP DEFAULT;
COMMIT;
-- case: deny
ALTER TABLE accounts ADD COLUMN plan text DEFAULT 'free' NOT NULL, ALTER COLUMN plan DROP DEFAULT;
-- case: pass
-- The safe alternatives: nullable, or NOT NULL with a constant default that stays.
ALTER TABLE accounts ADD COLUMN nickname text;
ALTER TABLE accounts ADD COLUMN plan text NOT NULL DEFAULT 'free';
-- case: pass
-- Columns that fill themselves.
ALTER TABLE accounts ADD COLUMN n bigint NOT NULL GENERATED ALWAYS AS IDENTITY,
  ADD COLUMN s bigserial NOT NULL;
-- case: pass
-- The rule links a DROP DEFAULT to the ADD only within one transaction; dropping the default
-- in a later release, once every app version writes the column, is the intended last step.
ALTER TABLE accounts ADD COLUMN plan text NOT NULL DEFAULT 'free';
ALTER TABLE accounts ALTER COLUMN plan DROP DEFAULT;
-- case: pass
CREATE TABLE app.fresh (id int);
ALTER TABLE app.fresh ADD COLUMN plan text NOT NULL;

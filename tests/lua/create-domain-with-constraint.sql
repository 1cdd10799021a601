-- case: warn
CREATE DOMAIN positive_amount AS numeric CHECK (VALUE > 0);
-- case: warn
CREATE DOMAIN app.code AS text COLLATE "C" DEFAULT 'x' NOT NULL;
-- case: deny
CREATE DOMAIN app.email AS text CONSTRAINT email_at CHECK (VALUE LIKE '%@%');
-- case: pass
-- The alternative: the base type and a CHECK on the column.
CREATE TABLE payments (amount numeric CHECK (amount > 0));
-- case: pass
-- A domain without constraints.
CREATE DOMAIN app.label AS text DEFAULT '' COLLATE "C";

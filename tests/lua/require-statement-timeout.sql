-- case: set
ALTER TABLE accounts ALTER COLUMN id TYPE bigint;
-- case: set
CREATE INDEX accounts_email ON accounts (email);
-- case: pass
CREATE INDEX CONCURRENTLY accounts_email ON accounts (email);
-- case: pass
COMMENT ON TABLE accounts IS 'people';

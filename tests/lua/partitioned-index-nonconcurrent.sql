-- Offline, without live facts, the rule knows a table is partitioned only when it saw it
-- created with PARTITION BY; through the proxy (or check --upstream) it asks the server.
-- case: deny
CREATE TABLE events (id bigint, at timestamptz) PARTITION BY RANGE (at);
CREATE INDEX CONCURRENTLY events_at ON events (at);
-- case: deny
CREATE TABLE app.metrics (k text, v float8) PARTITION BY LIST (k);
CREATE TABLE app.metrics_a PARTITION OF app.metrics FOR VALUES IN ('a');
CREATE INDEX CONCURRENTLY IF NOT EXISTS metrics_k ON app.metrics (k);
-- case: deny
-- ON ONLY does not help CONCURRENTLY: PostgreSQL refuses it for a partitioned parent.
CREATE TABLE app.metrics (k text, v float8) PARTITION BY LIST (k);
CREATE INDEX CONCURRENTLY metrics_v ON ONLY app.metrics (v);
-- case: pass
-- The safe recipe: ON ONLY on the parent, CONCURRENTLY on the partition, then ATTACH.
CREATE TABLE events (id bigint, at timestamptz) PARTITION BY RANGE (at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE INDEX events_at ON ONLY events (at);
CREATE INDEX CONCURRENTLY events_2024_at ON events_2024 (at);
ALTER INDEX events_at ATTACH PARTITION events_2024_at;
-- case: pass
-- A partitioned table created in this migration is empty: a plain build is instant.
CREATE TABLE events (id bigint, at timestamptz) PARTITION BY RANGE (at);
CREATE INDEX events_at ON events (at);
-- case: pass
-- A plain table of the same name: not partitioned.
CREATE TABLE events (id bigint, at timestamptz) PARTITION BY RANGE (at);
DROP TABLE events;
CREATE TABLE events (id bigint, at timestamptz);
CREATE INDEX CONCURRENTLY events_at ON events (at);
-- case: pass
CREATE INDEX CONCURRENTLY accounts_email ON accounts (email);

-- case: deny
ALTER TABLE events ATTACH PARTITION events_2025 FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
-- case: deny
ALTER TABLE app.measurements ATTACH PARTITION archive.measurements_2019
  FOR VALUES FROM ('2019-01-01') TO ('2020-01-01');
-- case: pass
-- A table created in this migration is empty: nothing to scan.
CREATE TABLE events_2026 (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE events ATTACH PARTITION events_2026 FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
-- case: pass
-- Attaching an index partition only links two indexes.
ALTER INDEX events_at_idx ATTACH PARTITION events_2025_at_idx;
-- case: pass
ALTER TABLE events DETACH PARTITION events_2019;
-- case: deny
-- The new table is app.events_2027; the attached one is events_2027 in the search path.
CREATE TABLE app.events_2027 (LIKE events);
ALTER TABLE events ATTACH PARTITION events_2027 FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');

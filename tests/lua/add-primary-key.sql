-- case: deny
ALTER TABLE events ADD PRIMARY KEY (id);
-- case: deny
ALTER TABLE ONLY app.events ADD CONSTRAINT events_pkey PRIMARY KEY (tenant_id, id);
-- case: deny
ALTER TABLE events ADD COLUMN uid uuid PRIMARY KEY DEFAULT gen_random_uuid();
-- case: pass
-- The safe alternative (the columns made NOT NULL beforehand).
CREATE UNIQUE INDEX CONCURRENTLY events_pkey_idx ON events (id);
ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY USING INDEX events_pkey_idx;
-- case: pass
CREATE TABLE app.fresh (id bigint);
ALTER TABLE app.fresh ADD PRIMARY KEY (id);
-- case: pass
ALTER TABLE events ADD CONSTRAINT events_ref_key UNIQUE USING INDEX events_ref_idx;

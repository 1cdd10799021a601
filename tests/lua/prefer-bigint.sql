-- case: warn
CREATE TABLE app.orders (id serial PRIMARY KEY, total numeric);
-- case: warn
ALTER TABLE orders ADD COLUMN quantity integer NOT NULL DEFAULT 1;
-- case: deny
CREATE TABLE flags (id bigint, level int2, tags int4[]);
-- case: pass
CREATE TABLE app.orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, quantity int8, seq bigserial);
-- case: pass
ALTER TABLE app.orders ALTER COLUMN quantity TYPE bigint;
-- case: pass
CREATE TABLE app.points (x float4, y real, n numeric(10));

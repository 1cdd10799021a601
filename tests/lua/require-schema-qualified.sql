-- case: warn
CREATE TABLE users (id bigint);
-- case: warn
CREATE INDEX CONCURRENTLY users_email ON users (email);
-- case: deny
ALTER TABLE app.orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;
-- case: deny
DROP INDEX CONCURRENTLY IF EXISTS users_email;
-- case: pass
CREATE TABLE public.users (id bigint);
CREATE INDEX CONCURRENTLY users_email ON public.users (email);
-- case: pass
ALTER TABLE app.orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES app.users (id) NOT VALID;
-- case: pass
CREATE TEMP TABLE staging_ids (id bigint);
-- case: pass
CREATE TYPE mood AS ENUM ('sad', 'happy');

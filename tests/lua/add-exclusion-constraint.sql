-- case: deny
ALTER TABLE bookings ADD CONSTRAINT bookings_no_overlap EXCLUDE USING gist (room_id WITH =, during WITH &&);
-- case: deny
ALTER TABLE IF EXISTS app.bookings ADD COLUMN note text,
  ADD EXCLUDE USING gist (during WITH &&) WHERE (not cancelled);
-- case: pass
-- A table created in the same migration.
CREATE TABLE app.rooms_booked (room_id int, during tstzrange);
ALTER TABLE app.rooms_booked ADD CONSTRAINT no_overlap EXCLUDE USING gist (room_id WITH =, during WITH &&);
-- case: pass
-- In CREATE TABLE the constraint costs nothing.
CREATE TABLE bookings_v2 (room_id int, during tstzrange,
  EXCLUDE USING gist (room_id WITH =, during WITH &&));
-- case: pass
ALTER TABLE bookings ADD CONSTRAINT bookings_room CHECK (room_id > 0) NOT VALID;

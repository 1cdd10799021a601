// What node-postgres sends while tests/fuzz/capture.py records it: parameterised queries
// (the extended protocol, unnamed), named prepared statements, array row mode, errors,
// notices, LISTEN/NOTIFY and a multi-statement simple query. Connection settings come
// from PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE.
'use strict';
const { Client } = require('pg');

async function main() {
  const c = new Client({ application_name: 'fuzz node-postgres' });
  await c.connect();
  c.on('notice', () => {});
  await c.query('DROP TABLE IF EXISTS node_items');
  await c.query('CREATE TABLE node_items (id serial PRIMARY KEY, name text, n numeric, tags text[], doc jsonb)');
  for (let i = 0; i < 20; i++) {
    await c.query('INSERT INTO node_items (name, n, tags, doc) VALUES ($1, $2, $3, $4)',
      [`item ${i}`, i * 1.5, ['a', `t${i}`], { i, nested: { ok: true } }]);
  }
  await c.query({ name: 'by_id', text: 'SELECT * FROM node_items WHERE id = $1', values: [3] });
  await c.query({ name: 'by_id', text: 'SELECT * FROM node_items WHERE id = $1', values: [4] });
  await c.query({ text: 'SELECT id, name FROM node_items ORDER BY id', rowMode: 'array' });
  await c.query("DO $$BEGIN RAISE NOTICE 'node notice'; END$$");
  for (const bad of ['SELECT $1::int', 'SELECT * FROM nowhere WHERE id = $1', 'ALTER TABLE node_items ADD COLUMN id int']) {
    try { await c.query(bad, ['not an int']); } catch (e) { /* expected */ }
  }
  await c.query('BEGIN');
  await c.query('ALTER TABLE node_items ADD COLUMN created timestamptz DEFAULT now()');
  await c.query('CREATE INDEX node_items_name ON node_items (name)');
  try { await c.query('CREATE INDEX CONCURRENTLY node_items_n ON node_items (n)'); } catch (e) { }
  await c.query('ROLLBACK');
  await c.query('SELECT 1; SELECT 2; ALTER TABLE node_items ALTER COLUMN n TYPE bigint');
  await c.query('CREATE INDEX CONCURRENTLY node_items_n ON node_items (n)');
  await c.query('LISTEN node_channel');
  const done = new Promise((resolve) => c.on('notification', resolve));
  await c.query("SELECT pg_notify('node_channel', 'hello from node')");
  await done;
  await c.query('SELECT $1::text AS big', ['y'.repeat(70000)]);
  await c.query('DROP TABLE node_items');
  await c.end();
}

main().catch((e) => { console.error(e); process.exit(1); });

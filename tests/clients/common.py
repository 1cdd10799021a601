"""The frame every migration-tool test uses.

Each tool gets its own database, owned by the SCRAM role, and runs twice through ddlguard
with the default rule library and live facts: once plaintext, once with TLS on both legs
(the tool connects with sslmode=require; ddlguard verifies the server). The tool's setup
changes only in its connection string. A tool test implements:

    migrate(env)            apply every pending migration; returns CompletedProcess
    rollback_last(env)      roll back the last one
    add_dangerous(...)      write a 6th migration that ddlguard must deny
    recorded(db)            the migration ids its bookkeeping table holds

and checks the schema after each step with the helpers below.
"""

import os
import subprocess

from harness import APPDB, USERS, ProxyTestCase, proxy_only, subdir, run  # noqa: F401

ROLE, PASSWORD = USERS['scram']
BIG_ROWS = 20000          # above the default small_table_rows (10000)


class ClientCase(ProxyTestCase):
    """Base class: self.proxy_plain / self.proxy_tls, a database per tool and mode."""

    class_proxy = False
    tool = 'tool'

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # The monitor role reads live facts (row estimates) for the small-table exemption.
        cls.pg.psql_admin(f'GRANT pg_read_all_stats TO {ROLE}')

    def setUp(self):
        super().setUp()
        # facts_cache_seconds = 0: the tests grow a table between two migrations.
        settings = {'rules': 'default', 'monitor_user': ROLE, 'monitor_password': PASSWORD, 'facts_cache_seconds': '0',
                    'server_tls_sslmode': 'verify-full', 'server_tls_ca_file': self.pg.certs.ca}
        self.plain = self.start_proxy(dict(settings))
        self.tls = self.start_proxy(dict(settings, client_tls_sslmode='require',
                                         client_tls_cert_file=self.pg.certs.proxy,
                                         client_tls_key_file=self.pg.certs.proxy_key))

    # -- databases and connections
    def fresh_db(self, mode):
        db = f'{self.tool}_{mode}'.replace('-', '_')
        self.pg.psql_admin(f'DROP DATABASE IF EXISTS {db} WITH (FORCE)', db='postgres')
        self.pg.psql_admin(f'CREATE DATABASE {db} OWNER {ROLE}', db='postgres')
        return db

    def proxy_for(self, mode):
        return self.tls if mode == 'tls' else self.plain

    def url(self, mode, db, scheme='postgresql'):
        p = self.proxy_for(mode)
        ssl = 'require' if mode == 'tls' else 'disable'
        return f'{scheme}://{ROLE}:{PASSWORD}@{p.host}:{p.port}/{db}?sslmode={ssl}'

    def env(self, mode, db):
        """libpq environment plus DATABASE_URL: what a pipeline would set for the tool."""
        p = self.proxy_for(mode)
        e = dict(os.environ, PGHOST=p.host, PGPORT=str(p.port), PGUSER=ROLE, PGPASSWORD=PASSWORD,
                 PGDATABASE=db, PGSSLMODE='require' if mode == 'tls' else 'disable',
                 DATABASE_URL=self.url(mode, db))
        return e

    def workdir(self, mode):
        d = os.path.join(subdir('clients'), f'{self.tool}_{mode}')
        os.makedirs(d, exist_ok=True)
        return d

    # -- schema checks (directly on the server, as the superuser)
    def tables(self, db):
        return {r[0] for r in self.pg.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", db=db)}

    def columns(self, db, table):
        return [r[0] for r in self.pg.query(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
            "ORDER BY attnum", (table,), db=db)]

    def indexes(self, db, table):
        """{index name: is valid}"""
        return {r[0]: r[1] for r in self.pg.query(
            "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = %s::regclass", (table,), db=db)}

    def constraints(self, db, table):
        """{constraint name: (type, validated)}"""
        return {r[0]: (r[1], r[2]) for r in self.pg.query(
            "SELECT conname, contype, convalidated FROM pg_constraint WHERE conrelid = %s::regclass",
            (table,), db=db)}

    def rows(self, db, sql):
        return self.pg.query(sql, db=db)

    def make_big(self, db, table, values):
        """Grow `table` above small_table_rows, as production data would be. `values` is the
        row expression for each g, e.g. "g, 'user' || g || '@example.com'"."""
        self.pg.psql_admin(f'INSERT INTO {table} SELECT {values} FROM generate_series(1000, 1000 + {BIG_ROWS}) g; '
                           f'ANALYZE {table}', db=db)

    def assertDenied(self, p, rule=None):
        out = p.stdout + p.stderr
        self.assertNotEqual(p.returncode, 0, out[-3000:])
        self.assertIn('ddlguard rule:', out, out[-3000:])
        if rule:
            self.assertIn(rule, out, out[-3000:])

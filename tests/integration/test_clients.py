"""End to end with real clients: psql -f of a migration, psycopg2, and a JDBC program."""

import os
import subprocess

import psycopg2
import psycopg2.errors
import psycopg2.extras

from harness import HERE, ProxyTestCase, APPDB, USERS, compile_java, proxy_only

MIGRATION = os.path.join(HERE, 'data', 'migration.sql')
DROP_MIGRATION = ('DROP VIEW IF EXISTS mig_customer_totals; '
                  'DROP TABLE IF EXISTS mig_orders, mig_customers')


class ClientsMixin:
    def test_psql_migration_file(self):
        self.pg.query(DROP_MIGRATION)
        self.addCleanup(self.pg.query, DROP_MIGRATION)
        p = self.psql(self.conninfo('scram'), '-f', MIGRATION, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip().splitlines()[-1], '102')
        cols = self.pg.query("SELECT column_name, is_nullable FROM information_schema.columns "
                             "WHERE table_name = 'mig_customers' ORDER BY ordinal_position")
        self.assertEqual(cols, [('id', 'NO'), ('email', 'NO'), ('created_at', 'NO'),
                                ('display_name', 'NO')])
        self.assertEqual(self.pg.query('SELECT count(*), sum(total_cents) FROM mig_customer_totals'),
                         [(100, 5005000)])

    def test_psql_migration_error_stops(self):
        """ON_ERROR_STOP: the failing statement's error reaches psql and nothing after it runs."""
        sql = ('CREATE TEMP TABLE x (id int);\nINSERT INTO x VALUES (1);\n'
               'INSERT INTO x VALUES (\'not a number\');\nINSERT INTO x VALUES (3);\n')
        p = self.psql(self.conninfo('md5'), '-f', '-', input=sql)
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn('invalid input syntax for type integer', p.stderr)
        self.assertIn('<stdin>:3:', p.stderr)

    def test_psycopg2_end_to_end(self):
        c = self.connect('scram', autocommit=False)
        table = f'psy_e2e_{os.getpid()}'
        with c.cursor() as cur:
            cur.execute(f'CREATE TABLE {table} (id serial PRIMARY KEY, name text, data jsonb)')
            c.commit()
            self.addCleanup(self.pg.query, f'DROP TABLE IF EXISTS {table}')
            psycopg2.extras.execute_values(
                cur, f'INSERT INTO {table} (name, data) VALUES %s',
                [(f'n{i}', psycopg2.extras.Json({'i': i, 'tags': ['a', 'b']})) for i in range(1000)])
            c.commit()
            cur.execute(f"INSERT INTO {table} (name) VALUES ('rolled back')")
            c.rollback()
            cur.execute(f"SELECT count(*), sum((data->>'i')::int) FROM {table}")
            self.assertEqual(cur.fetchone(), (1000, 499500))
            with self.assertRaises(psycopg2.errors.UniqueViolation):
                cur.execute(f"INSERT INTO {table} (id, name) VALUES (1, 'dup')")
            c.rollback()
        # a server-side (named) cursor
        with c.cursor(name='big_cursor') as cur:
            cur.itersize = 100
            cur.execute(f'SELECT id, name FROM {table} ORDER BY id')
            ids = [r[0] for r in cur]
        self.assertEqual(ids, list(range(1, 1001)))
        c.commit()

    def run_jdbc(self, url, user='scram'):
        cp = compile_java('JdbcSmoke')
        role, pw = USERS[user]
        p = subprocess.run(['java', '-cp', cp, 'JdbcSmoke', url, role, pw],
                           capture_output=True, text=True, timeout=180)
        self.assertEqual(p.returncode, 0, p.stdout[-3000:] + p.stderr[-3000:])
        self.assertEqual(p.stdout.strip().splitlines()[-1], 'JDBC OK')

    def test_jdbc_scram(self):
        self.run_jdbc(f'jdbc:postgresql://{self.proxy.host}:{self.proxy.port}/{APPDB}?sslmode=disable')

    def test_jdbc_md5(self):
        self.run_jdbc(f'jdbc:postgresql://{self.proxy.host}:{self.proxy.port}/{APPDB}?sslmode=disable',
                      'md5')


class TestClients(ClientsMixin, ProxyTestCase):
    pass


@proxy_only
class TestClientsBothLegsTLS(ClientsMixin, ProxyTestCase):
    """The same clients with TLS on both legs (ddlguard asks for the password and does SCRAM
    upstream itself)."""
    settings = {
        'client_tls_sslmode': 'require',
        'client_tls_cert_file': '{proxy_cert}',
        'client_tls_key_file': '{proxy_key}',
        'server_tls_sslmode': 'verify-full',
        'server_tls_ca_file': '{ca}',
    }

    def conninfo(self, user='trust', db=APPDB, proxy=None, password=None, **kw):
        kw.setdefault('sslmode', 'require')
        return super().conninfo(user, db, proxy, password, **kw)

    def test_jdbc_scram(self):
        self.run_jdbc(f'jdbc:postgresql://{self.proxy.host}:{self.proxy.port}/{APPDB}'
                      f'?sslmode=verify-full&sslrootcert={self.pg.certs.ca}')

    def test_jdbc_md5(self):
        self.run_jdbc(f'jdbc:postgresql://{self.proxy.host}:{self.proxy.port}/{APPDB}'
                      f'?sslmode=require', 'md5')

"""Staging first: one ddlguard with a staging and a production route (two databases). A
migration is denied in production, applied in staging, then allowed in production; a variant
that differs only in a constant is denied (and the hint names what staging ran); a staging
transaction or savepoint that rolled back does not count; migration tools' bookkeeping is
exempt; an unreachable ledger denies; the contract window holds contract steps back."""

import time
import psycopg2

from harness import ProxyTestCase, USERS, proxy_only

STG, PROD = 'ledger_stg', 'ledger_prod'


@proxy_only
class TestStagingFirst(ProxyTestCase):
    class_proxy = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        owner = USERS['trust'][0]
        monitor = USERS['scram'][0]
        for db in (STG, PROD):
            cls.pg.psql_admin(f'DROP DATABASE IF EXISTS {db}', db='postgres')
            cls.pg.psql_admin(f'CREATE DATABASE {db} OWNER {owner}', db='postgres')
            cls.pg.psql_admin(f'CREATE TABLE accounts (id int); ALTER TABLE accounts OWNER TO {owner}', db=db)
        # The monitor role keeps the ledger in the staging database.
        cls.pg.psql_admin(f'GRANT CREATE ON DATABASE {STG} TO {monitor}', db='postgres')

    def guard(self, **settings):
        s = {'server_tls_sslmode': 'disable', 'monitor_user': USERS['scram'][0],
             'monitor_password': USERS['scram'][1]}
        s.update(settings)
        host, port = self.pg.host, self.pg.port
        dbs = {STG: f'host={host} port={port} environment=staging target=shop',
               PROD: f'host={host} port={port} environment=production target=shop'}
        return self.start_proxy(s, databases=dbs)

    def run_in(self, p, db, *sql):
        args = []
        for q in sql:
            args += ['-c', q]
        return self.psql(self.conninfo(proxy=p, db=db), *args)

    def columns(self, db):
        return [r[0] for r in self.pg.query("SELECT attname FROM pg_attribute WHERE attrelid = 'accounts'::regclass "
                                            "AND attnum > 0 AND NOT attisdropped", db=db)]

    def staged(self, p, *sql):
        """Run `sql` in staging, then wait for its ledger record: ddlguard writes it on a side
        connection just after the COMMIT's reply, so it can land a moment after psql exits."""
        before = self.ledger_rows()
        r = self.run_in(p, STG, *sql)
        if r.returncode == 0:
            deadline = time.monotonic() + 10
            while self.ledger_rows() == before and time.monotonic() < deadline:
                time.sleep(0.05)
        return r

    def ledger_rows(self):
        """Commits recorded in staging's ledger (0 before its table exists)."""
        if not self.pg.query("SELECT to_regclass('ddlguard.applied_change') IS NOT NULL", db=STG)[0][0]:
            return 0
        return self.pg.query("SELECT coalesce(sum(commit_count), 0) FROM ddlguard.applied_change", db=STG)[0][0]

    def setUp(self):
        super().setUp()
        for db in (STG, PROD):
            self.pg.psql_admin('ALTER TABLE accounts DROP COLUMN IF EXISTS c1, DROP COLUMN IF EXISTS c2, '
                               'DROP COLUMN IF EXISTS c3, DROP COLUMN IF EXISTS c4', db=db)
        self.pg.psql_admin('DROP SCHEMA IF EXISTS ddlguard CASCADE', db=STG)

    def test_denied_then_staged_then_allowed(self):
        p = self.guard()
        sql = 'ALTER TABLE accounts ADD COLUMN c1 int DEFAULT 5'
        r = self.run_in(p, PROD, sql)
        self.assertEqual(r.returncode, 1)
        self.assertIn('ERROR:  this ALTER TABLE has not run in staging', r.stderr)
        self.assertIn('ddlguard rule: staging-first', r.stderr)
        self.assertNotIn('c1', self.columns(PROD))
        self.assertEqual(self.staged(p, sql).returncode, 0)
        self.assertEqual(self.pg.query("SELECT environment, target, command_tag, commit_count "
                                       "FROM ddlguard.applied_change", db=STG),
                         [('staging', 'shop', 'ALTER TABLE', 1)])
        # Whitespace and case do not matter: the strict id is the parse tree's.
        r = self.run_in(p, PROD, 'alter   table ACCOUNTS add column c1 INT default 5')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('c1', self.columns(PROD))

    def test_constant_variant_is_denied_with_a_hint(self):
        p = self.guard()
        self.assertEqual(self.staged(p, 'ALTER TABLE accounts ADD COLUMN c2 int DEFAULT 5').returncode, 0)
        r = self.run_in(p, PROD, 'ALTER TABLE accounts ADD COLUMN c2 int DEFAULT 6')
        self.assertEqual(r.returncode, 1)
        self.assertIn('has not run in staging', r.stderr)
        self.assertIn('HINT:  Staging ran a statement like it with other names or constants: '
                      'ALTER TABLE accounts ADD COLUMN c2 int DEFAULT 5', r.stderr)

    def test_rolled_back_transaction_and_savepoint_do_not_count(self):
        p = self.guard()
        r = self.run_in(p, STG, 'BEGIN', 'ALTER TABLE accounts ADD COLUMN c3 int', 'ROLLBACK')
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.run_in(p, STG, 'BEGIN', 'SAVEPOINT s1', 'ALTER TABLE accounts ADD COLUMN c4 int',
                        'ROLLBACK TO SAVEPOINT s1', 'COMMIT')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.run_in(p, PROD, 'ALTER TABLE accounts ADD COLUMN c3 int').returncode, 1)
        self.assertEqual(self.run_in(p, PROD, 'ALTER TABLE accounts ADD COLUMN c4 int').returncode, 1)
        # An explicit transaction that commits counts.
        r = self.staged(p, 'BEGIN', 'ALTER TABLE accounts ADD COLUMN c3 int', 'COMMIT')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.run_in(p, PROD, 'ALTER TABLE accounts ADD COLUMN c3 int').returncode, 0)

    def test_tool_bookkeeping_is_exempt(self):
        p = self.guard()
        r = self.run_in(p, PROD, 'CREATE TABLE IF NOT EXISTS alembic_version (version_num varchar(32) PRIMARY KEY)')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.pg.psql_admin('DROP TABLE alembic_version', db=PROD)

    def test_unreachable_ledger_denies(self):
        p = self.guard(monitor_password='wrong')
        r = self.run_in(p, PROD, 'ALTER TABLE accounts ADD COLUMN c1 int')
        self.assertEqual(r.returncode, 1)
        self.assertIn('the ledger is unreachable', r.stderr)
        self.assertNotIn('wrong', p.log_text())

    def test_contract_window(self):
        p = self.guard(contract_window='14d')
        self.pg.psql_admin('ALTER TABLE accounts ADD COLUMN IF NOT EXISTS c4 int', db=STG)
        self.pg.psql_admin('ALTER TABLE accounts ADD COLUMN IF NOT EXISTS c4 int', db=PROD)
        self.assertEqual(self.staged(p, 'ALTER TABLE accounts DROP COLUMN c4').returncode, 0)
        r = self.run_in(p, PROD, 'ALTER TABLE accounts DROP COLUMN c4')
        self.assertEqual(r.returncode, 1)
        self.assertIn('contract steps wait 336 hours', r.stderr)
        # An expand step in the same window is fine once staged.
        self.assertEqual(self.staged(p, 'ALTER TABLE accounts ADD COLUMN c1 int').returncode, 0)
        self.assertEqual(self.run_in(p, PROD, 'ALTER TABLE accounts ADD COLUMN c1 int').returncode, 0)

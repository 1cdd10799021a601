"""Transparent retries of statements that hit ddlguard's lock_timeout, against real blockers:
the migration sees one success (plus a notice per retry naming who holds the lock), the
application is never queued behind the migration for longer than the lock timeout, and the
retries stop at the attempt limit or when the client cancels."""

import os
import threading
import time

import psycopg2

from harness import ProxyTestCase, USERS, proxy_only, subdir

LOCK_TIMEOUT_MS = 500
POLICY = ('function on_statement(stmt, session)\n'
          '  if stmt.lock_level >= LOCK.SHARE_UPDATE_EXCLUSIVE then\n'
          f'    return set{{ lock_timeout = {LOCK_TIMEOUT_MS} }}\n'
          '  end\n'
          'end\n')


@proxy_only
class TestRetry(ProxyTestCase):
    class_proxy = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        path = os.path.join(subdir('policies'), 'retry.lua')
        with open(path, 'w') as f:
            f.write(POLICY)
        cls.policy = path

    def setUp(self):
        super().setUp()
        self.table = f'rt_{self._testMethodName[-20:]}'
        owner = USERS['trust'][0]
        self.pg.psql_admin(f'DROP TABLE IF EXISTS {self.table} CASCADE; CREATE TABLE {self.table} (id int); '
                           f'INSERT INTO {self.table} VALUES (1); ALTER TABLE {self.table} OWNER TO {owner}')

    def guard(self, **settings):
        s = {'policy_files': self.policy, 'server_tls_sslmode': 'disable',
             'monitor_user': USERS['scram'][0], 'monitor_password': USERS['scram'][1]}
        s.update(settings)
        return self.start_proxy(s)

    def blocker(self, seconds, mode='ACCESS SHARE', app='the-blocker'):
        """An application transaction holding `mode` on the table for `seconds`."""
        c = self.pg.admin()
        c.autocommit = False
        with c.cursor() as cur:
            cur.execute(f"SET application_name = '{app}'")
            cur.execute(f'LOCK TABLE {self.table} IN {mode} MODE')

        def release():
            time.sleep(seconds)
            c.commit()
            c.close()
        t = threading.Thread(target=release)
        t.start()
        self.addCleanup(t.join)

    def columns(self):
        return [r[0] for r in self.pg.query(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
            "AND NOT attisdropped ORDER BY attnum", (self.table,))]

    def test_autocommit_retry_succeeds_and_app_is_not_queued(self):
        p = self.guard()
        self.blocker(2.5)
        # The application keeps reading the table while the migration waits: with the
        # migration's AccessExclusive request queued, each read waits behind it, but never
        # longer than the lock timeout, because the migration gives up and lets it through.
        worst = [0.0]
        reads = [0]
        failure = []
        stop = threading.Event()

        def app_reads():
            try:
                c = self.pg.admin()          # the application talks to PostgreSQL directly
                c.autocommit = True
                while not stop.is_set():
                    t0 = time.monotonic()
                    with c.cursor() as cur:
                        cur.execute(f'SELECT count(*) FROM {self.table}')
                    worst[0] = max(worst[0], time.monotonic() - t0)
                    reads[0] += 1
                    time.sleep(0.02)
                c.close()
            except Exception as e:   # a dead reader must fail the test, not pass it
                failure.append(e)
        reader = threading.Thread(target=app_reads)
        time.sleep(0.2)
        reader.start()
        try:
            r = self.psql(self.conninfo(proxy=p), '-c', f'ALTER TABLE {self.table} ADD COLUMN v int')
        finally:
            stop.set()
            reader.join()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), 'ALTER TABLE')
        notices = [l for l in r.stderr.splitlines() if 'retrying in' in l]
        self.assertGreaterEqual(len(notices), 1, r.stderr)
        self.assertIn('the-blocker', r.stderr)            # the notice names the blocker
        self.assertIn('v', self.columns())
        self.assertEqual(failure, [])
        self.assertGreater(reads[0], 20, 'the application reader did not run')
        self.assertLess(worst[0], LOCK_TIMEOUT_MS / 1000 + 0.6, f'an app read waited {worst[0]:.2f} s')

    def test_in_transaction_retry_keeps_the_transaction(self):
        p = self.guard()
        self.blocker(2)
        c = self.connect(proxy=p, autocommit=False)
        with c.cursor() as cur:
            cur.execute(f'CREATE TABLE {self.table}_new (x int)')
            cur.execute(f'ALTER TABLE {self.table} ADD COLUMN w int')
            cur.execute('SHOW lock_timeout')
            self.assertEqual(cur.fetchone()[0], '0')
        c.commit()
        self.assertTrue(any('retrying in' in n for n in c.notices), c.notices)
        self.assertIn('w', self.columns())
        self.assertTrue(self.pg.query(f"SELECT to_regclass('{self.table}_new') IS NOT NULL")[0][0])
        self.pg.psql_admin(f'DROP TABLE {self.table}_new')

    def test_multi_statement_query_is_resent_whole(self):
        p = self.guard()
        self.blocker(2)
        r = self.psql(self.conninfo(proxy=p), '-c',
                      f'ALTER TABLE {self.table} ADD COLUMN a1 int; ALTER TABLE {self.table} ADD COLUMN a2 int')
        self.assertEqual(r.returncode, 0, r.stderr)
        cols = self.columns()
        self.assertIn('a1', cols)
        self.assertIn('a2', cols)

    def test_gives_up_after_the_attempt_limit(self):
        p = self.guard(retry_attempts='3')
        self.blocker(8)
        t0 = time.monotonic()
        r = self.psql(self.conninfo(proxy=p), '-c', f'ALTER TABLE {self.table} ADD COLUMN g int')
        self.assertEqual(r.returncode, 1)
        self.assertIn('canceling statement due to lock timeout', r.stderr)
        self.assertEqual(len([l for l in r.stderr.splitlines() if 'retrying in' in l]), 2, r.stderr)
        self.assertLess(time.monotonic() - t0, 6)
        self.assertNotIn('g', self.columns())

    def test_budget_limits_the_total_wait(self):
        p = self.guard(retry_budget='2')
        self.blocker(8)
        t0 = time.monotonic()
        r = self.psql(self.conninfo(proxy=p), '-c', f'ALTER TABLE {self.table} ADD COLUMN b int')
        self.assertEqual(r.returncode, 1)
        self.assertLess(time.monotonic() - t0, 4.5)

    def test_cancel_stops_the_retries(self):
        p = self.guard()
        self.blocker(8)
        c = self.connect(proxy=p)
        done = {}

        def run():
            try:
                with c.cursor() as cur:
                    cur.execute(f'ALTER TABLE {self.table} ADD COLUMN k int')
                done['ok'] = True
            except psycopg2.Error as e:
                done['err'] = e
        t = threading.Thread(target=run)
        t.start()
        time.sleep(1.5)             # a retry or two in
        t0 = time.monotonic()
        c.cancel()
        t.join(10)
        self.assertFalse(t.is_alive())
        self.assertLess(time.monotonic() - t0, 2)
        self.assertIn(done.get('err').pgcode if 'err' in done else None, ('55P03', '57014'))
        self.assertEqual(self.scalar(c, 'SELECT 1'), 1)    # the session is usable
        self.assertNotIn('k', self.columns())

    def test_create_index_concurrently_drops_the_invalid_index_and_retries(self):
        p = self.guard()
        # CIC waits for transactions that write the table: an uncommitted write.
        self.blocker(2.5, mode='ROW EXCLUSIVE')
        r = self.psql(self.conninfo(proxy=p), '-c',
                      f'CREATE INDEX CONCURRENTLY {self.table}_cic ON {self.table} (id)')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('retrying in', r.stderr)
        valid = self.pg.query("SELECT indisvalid FROM pg_index WHERE indexrelid = %s::regclass",
                              (f'{self.table}_cic',))
        self.assertEqual(valid, [(True,)])

    def test_no_retry_without_a_policy_timeout(self):
        # The client's own lock_timeout is the client's business: its 55P03 passes through.
        p = self.guard()
        self.blocker(3, mode='EXCLUSIVE')
        r = self.psql(self.conninfo(proxy=p), '-c', "SET lock_timeout = '200ms'", '-c',
                      f'SELECT * FROM {self.table} FOR UPDATE')
        self.assertEqual(r.returncode, 1)
        self.assertNotIn('retrying', r.stderr)

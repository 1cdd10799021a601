"""The lock monitor against a real lock queue: A holds a transaction that read t; the
migration ALTERs t (through ddlguard); C's SELECT on t queues behind the ALTER. The log names A
as the blocker and C as queued; ddlguard cancels the ALTER about a second after C queued; C
completes; the ALTER is retried and succeeds after A commits; the migration's client sees one
success and the notices. Also: an on_lock_wait policy can cancel sooner, and max_queue_wait = off
leaves the lock_timeout as the only backstop."""

import json
import os
import threading
import time

from harness import ProxyTestCase, USERS, proxy_only, subdir

POLICY = ('function on_statement(stmt, session)\n'
          '  if stmt.lock_level >= LOCK.SHARE_UPDATE_EXCLUSIVE then return set{ lock_timeout = "10s" } end\n'
          'end\n')


@proxy_only
class TestLockQueue(ProxyTestCase):
    class_proxy = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # The monitor role sees other sessions' state and queries with pg_read_all_stats.
        cls.pg.psql_admin(f'GRANT pg_read_all_stats TO {USERS["scram"][0]}')

    def setUp(self):
        super().setUp()
        self.table = f'mon_{self._testMethodName[-16:]}'
        self.pg.psql_admin(f'DROP TABLE IF EXISTS {self.table}; CREATE TABLE {self.table} (id int); '
                           f'INSERT INTO {self.table} VALUES (1); ALTER TABLE {self.table} OWNER TO {USERS["trust"][0]}')

    def guard(self, extra_policy='', **settings):
        pol = os.path.join(subdir('policies'), f'{self._testMethodName}.lua')
        with open(pol, 'w') as f:
            f.write(POLICY + extra_policy)
        self.audit = os.path.join(subdir('audit'), f'{self._testMethodName}.jsonl')
        s = {'server_tls_sslmode': 'disable', 'policy_files': pol, 'monitor_user': USERS['scram'][0],
             'monitor_password': USERS['scram'][1], 'audit_log': self.audit}
        s.update(settings)
        return self.start_proxy(s)

    def holder(self, seconds):
        """A: an application transaction that read the table and stays open."""
        a = self.pg.admin()
        a.autocommit = False
        with a.cursor() as cur:
            cur.execute("SET application_name = 'A-holder'")
            cur.execute(f'SELECT count(*) FROM {self.table}')

        def finish():
            time.sleep(seconds)
            a.commit()
            a.close()
        t = threading.Thread(target=finish)
        t.start()
        self.addCleanup(t.join)

    def migrate_in_background(self, p):
        out = {}

        def run():
            out['r'] = self.psql(self.conninfo(proxy=p), '-c', f'ALTER TABLE {self.table} ADD COLUMN v int')
        t = threading.Thread(target=run)
        t.start()
        return t, out

    def queued_select(self):
        """C: an application read that queues behind the migration's lock request."""
        c = self.pg.admin()
        c.autocommit = True
        t0 = time.monotonic()
        with c.cursor() as cur:
            cur.execute("SET application_name = 'C-app'")
            cur.execute(f'SELECT count(*) FROM {self.table}')
        waited = time.monotonic() - t0
        c.close()
        return waited

    def test_queue_is_noticed_and_the_migration_gets_out_of_the_way(self):
        p = self.guard()
        self.holder(4)
        time.sleep(0.2)
        t, out = self.migrate_in_background(p)
        time.sleep(0.6)                      # the ALTER is now waiting behind A
        waited = self.queued_select()
        self.assertGreater(waited, 0.5)      # C did queue behind the ALTER …
        self.assertLess(waited, 2.5)         # … and was released about a second later
        t.join(30)
        r = out['r']
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), 'ALTER TABLE')
        self.assertIn('was cancelled while it waited for its lock, because sessions queued behind it', r.stderr)
        self.assertIn('A-holder', r.stderr)
        log = p.log_text()
        self.assertRegex(log, r'lock_wait: \S+ waits [0-9.]+ s for AccessExclusiveLock; blocked by pid \d+ \(A-holder')
        self.assertRegex(log, r'queued behind it: pid \d+ \(C-app')
        self.assertIn('lock_wait: cancelling', log)
        cols = [r[0] for r in self.pg.query('SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass '
                                            'AND attnum > 0', (self.table,))]
        self.assertIn('v', cols)
        with open(self.audit) as f:
            waits = [json.loads(l) for l in f if '"event":"lock_wait"' in l]
        self.assertTrue(any('A-holder' in w['blockers'] for w in waits), waits)
        self.assertTrue(any('C-app' in w['queued'] for w in waits), waits)

    def test_on_lock_wait_policy_cancels(self):
        p = self.guard('function on_lock_wait(wait, session)\n'
                       '  for _, b in ipairs(wait.blockers) do\n'
                       '    if b.application_name == "A-holder" and wait.waited > 0.3 then return cancel() end\n'
                       '  end\n'
                       'end\n', max_queue_wait='off', retry_attempts='1')
        self.holder(5)
        time.sleep(0.2)
        t0 = time.monotonic()
        r = self.psql(self.conninfo(proxy=p), '-c', f'ALTER TABLE {self.table} ADD COLUMN w int')
        self.assertEqual(r.returncode, 1)
        self.assertIn('canceling statement due to user request', r.stderr)
        self.assertLess(time.monotonic() - t0, 3)

    def test_without_max_queue_wait_the_lock_timeout_is_the_backstop(self):
        p = self.guard(max_queue_wait='off', retry_attempts='1')
        self.holder(5)
        time.sleep(0.2)
        t, out = self.migrate_in_background(p)
        time.sleep(0.5)
        waited = self.queued_select()
        t.join(30)
        # Nobody cancels it for the queue: C waits for the full 10 s lock_timeout or for A.
        self.assertGreater(waited, 3.5)
        self.assertNotIn('lock_wait: cancelling', p.log_text())
        self.assertEqual(out['r'].returncode, 0, out['r'].stderr)   # it got the lock when A ended

    def test_warns_about_a_long_transaction_before_the_ddl(self):
        p = self.guard(long_transaction_warn='1')
        self.holder(4)
        time.sleep(1.5)                     # A's transaction is now older than 1 s
        r = self.psql(self.conninfo(proxy=p), '-c', f'ALTER TABLE {self.table} ADD COLUMN lw int')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stderr, r'WARNING:  pid \d+ \(A-holder, idle in transaction\) has held AccessShareLock on '
                         + self.table + r' for \d+ s: this ALTER TABLE will wait for it')
        self.assertIn('ddlguard rule: long-transaction', r.stderr)
        self.assertIn('after holding SHARE or stronger locks for', p.log_text())

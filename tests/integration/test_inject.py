"""The debug_inject_query test hook: ddlguard sends its own query at every Sync/Query boundary
and swallows the responses. Clients must see exactly what a direct connection shows, and
inject_log must prove the injected query ran."""

import threading
import time

import psycopg2
import psycopg2.errors

import test_clients
import test_relay
from harness import ProxyTestCase, proxy_only

INJECT = {'debug_inject_query': 'INSERT INTO inject_log DEFAULT VALUES'}


@proxy_only
class TestInjection(ProxyTestCase):
    settings = INJECT

    def last_inject_id(self):
        return self.pg.query('SELECT coalesce(max(id), 0) FROM inject_log')[0][0]

    def injected_since(self, last_id, who='trust_user'):
        return self.pg.query('SELECT count(*) FROM inject_log WHERE id > %s AND who = %s',
                             (last_id, who))[0][0]

    def compare(self, steps):
        direct = (self.pg.host, self.pg.port)
        proxied = (self.proxy.host, self.proxy.port)
        expected = test_relay.transcript(direct, steps)
        mark = self.last_inject_id()
        got = test_relay.transcript(proxied, steps)
        test_relay.assert_same_transcript(self, got, expected)
        return self.injected_since(mark)

    def test_pipeline_identical_to_direct(self):
        direct = test_relay.run_pipeline(self.pg.host, self.pg.port)
        self.assertEqual(direct.returncode, 0, direct.stdout[-2000:])
        mark = self.last_inject_id()
        proxied = test_relay.run_pipeline(self.proxy.host, self.proxy.port)
        self.assertEqual(proxied.stdout.splitlines(), direct.stdout.splitlines())
        self.assertEqual(proxied.returncode, 0)
        self.assertGreater(self.injected_since(mark), 0, 'the injected query did not run')

    def test_one_injection_per_idle_boundary(self):
        """The hook fires once the session is idle at a Sync or Query boundary (every request
        answered, no extended sequence open): after each awaited simple Query, and at least
        once for a pipeline, whose Syncs all pass before it is idle."""
        mark = self.last_inject_id()
        p = test_relay.run_pipeline(self.proxy.host, self.proxy.port)
        self.assertEqual(p.returncode, 0, p.stdout[-2000:])
        n = self.injected_since(mark)
        self.assertGreaterEqual(n, 1, 'no injection for a pipeline of 10 Syncs')
        mark = self.last_inject_id()
        c = self.connect()
        for i in range(5):
            self.scalar(c, 'SELECT %s', (i,))
        time.sleep(0.5)          # let the last boundary's injection happen before Terminate
        c.close()
        n = self.injected_since(mark)
        self.assertGreaterEqual(n, 5, f'{n} injections for 5 awaited simple Queries')

    def test_simple_protocol_identical_to_direct(self):
        n = self.compare(test_relay.TestSimpleProtocol.STEPS)
        self.assertGreater(n, 0, 'the injected query did not run')

    def test_extended_protocol_identical_to_direct(self):
        n = self.compare(test_relay.TestExtendedProtocol.STEPS)
        self.assertGreater(n, 0, 'the injected query did not run')

    def test_transactions_keep_their_meaning(self):
        c = self.connect(autocommit=False)
        with c.cursor() as cur:
            cur.execute('CREATE TEMP TABLE tx (v int)')
            c.commit()
            cur.execute('INSERT INTO tx VALUES (1)')
            c.rollback()
            cur.execute('INSERT INTO tx VALUES (2)')
            c.commit()
            with self.assertRaises(psycopg2.errors.DivisionByZero):
                cur.execute('SELECT 1/0')
            with self.assertRaises(psycopg2.errors.InFailedSqlTransaction):
                cur.execute('SELECT 1')
            c.rollback()
            cur.execute('SELECT array_agg(v) FROM tx')
            self.assertEqual(cur.fetchone()[0], [2])
            self.assertEqual(c.get_transaction_status(), psycopg2.extensions.TRANSACTION_STATUS_INTRANS)
        c.commit()

    def test_cancel_still_works(self):
        c = self.connect()
        timer = threading.Timer(0.5, c.cancel)
        timer.start()
        with self.assertRaises(psycopg2.errors.QueryCanceled):
            with c.cursor() as cur:
                cur.execute('SELECT pg_sleep(30)')
        timer.join()
        self.assertEqual(self.scalar(c, 'SELECT 9'), 9)

    def test_notifications_not_lost(self):
        """Notifications that arrive while an injected query runs belong to the client."""
        n = 300
        c = self.connect()
        with c.cursor() as cur:
            cur.execute('LISTEN ddlg_inject_chan')

        def notifier():
            a = self.pg.admin()
            try:
                with a.cursor() as cur:
                    for i in range(n):
                        cur.execute('SELECT pg_notify(%s, %s)', ('ddlg_inject_chan', str(i)))
            finally:
                a.close()
        t = threading.Thread(target=notifier)
        t.start()
        with c.cursor() as cur:
            while t.is_alive():
                cur.execute('SELECT 1')
        t.join()
        deadline = time.monotonic() + 10
        while len(c.notifies) < n and time.monotonic() < deadline:
            with c.cursor() as cur:
                cur.execute('SELECT 1')
            time.sleep(0.05)
        payloads = [int(x.payload) for x in c.notifies]
        self.assertEqual(payloads, list(range(n)), f'{n - len(payloads)} notifications lost')

    def test_copy_roundtrip_under_injection(self):
        c = self.connect()
        src = test_relay.TestCopy.Source(20000)
        sink = test_relay.TestCopy.Sink()
        with c.cursor() as cur:
            cur.execute('CREATE TEMP TABLE cp (id int, payload text)')
            cur.copy_expert('COPY cp FROM STDIN', src)
            cur.copy_expert('COPY (SELECT * FROM cp ORDER BY id) TO STDOUT', sink)
        self.assertEqual(sink.md5.hexdigest(), src.md5.hexdigest())


@proxy_only
class TestClientsWithInjection(test_clients.ClientsMixin, ProxyTestCase):
    """psql, psycopg2 and JDBC end to end while the hook injects at every boundary."""
    settings = INJECT

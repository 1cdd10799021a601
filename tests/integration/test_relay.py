"""The relay itself: cancel, COPY of 100 MB both ways, a 1,000-query pipeline, the extended
protocol compared byte for byte with PostgreSQL, a 50 MB row, 200 concurrent clients, startup
parameters, and backpressure on a slow reader."""

import hashlib
import os
import socket
import struct
import subprocess
import threading
import time

import psycopg2
import psycopg2.errors

import wire
from harness import ProxyTestCase, APPDB, compile_c, proxy_only, wait_for


def direct_and_proxy(test):
    """(host, port) of PostgreSQL itself and of the class's ddlguard."""
    return (test.pg.host, test.pg.port), (test.proxy.host, test.proxy.port)


def transcript(addr, steps, user='trust_user'):
    """Logs in with a raw client at addr and sends each step (bytes, number of ReadyForQuery to
    wait for); returns all messages received after login, normalized for comparison."""
    out = []
    with wire.Conn(*addr, timeout=30) as c:
        c.login(user, APPDB)
        for data, zs in steps:
            c.send(data)
            out += c.recv_ready(zs)
        c.send(wire.terminate())
    return wire.normalize(out)


def assert_same_transcript(test, got, expected):
    """Fails with the first differing message shown in full."""
    for i, (g, e) in enumerate(zip(got, expected)):
        if g != e:
            test.fail(f'message {i} differs from PostgreSQL\'s\n'
                      f'  direct : {e.kind!r} {e.body!r}\n  proxied: {g.kind!r} {g.body!r}\n'
                      f'  preceding: {expected[max(0, i - 3):i]}')
    if len(got) != len(expected):
        test.fail(f'{len(got)} messages instead of {len(expected)}; extra or missing: '
                  f'{(got if len(got) > len(expected) else expected)[min(len(got), len(expected)):][:10]}')


class RelayTestCase(ProxyTestCase):
    def run_sleep_and_cancel(self, conn, delay=0.5, sleep=30):
        timer = threading.Timer(delay, conn.cancel)
        timer.start()
        t0 = time.monotonic()
        try:
            with conn.cursor() as cur:
                cur.execute(f'SELECT pg_sleep({sleep})')
            raised = None
        except psycopg2.Error as e:
            raised = e
        finally:
            timer.join()
        return raised, time.monotonic() - t0


class TestCancel(RelayTestCase):
    def test_cancel_pg_sleep(self):
        c = self.connect()
        err, elapsed = self.run_sleep_and_cancel(c)
        self.assertIsInstance(err, psycopg2.errors.QueryCanceled, err)
        self.assertEqual(err.pgcode, '57014')
        self.assertLess(elapsed, 3.5, 'cancel took too long')
        self.assertEqual(self.scalar(c, 'SELECT 1 + 1'), 2)

    def test_cancel_repeatedly_same_session(self):
        c = self.connect('md5')
        for i in range(5):
            err, elapsed = self.run_sleep_and_cancel(c, delay=0.2)
            self.assertEqual(getattr(err, 'pgcode', None), '57014', f'round {i}: {err!r}')
            self.assertLess(elapsed, 3.5)
            # the next query must not be hit by a late cancel
            with c.cursor() as cur:
                cur.execute('SELECT pg_sleep(0.3), 5')
                self.assertEqual(cur.fetchone()[1], 5)

    def test_cancel_hits_only_its_own_session(self):
        a, b = self.connect(), self.connect()
        result = {}

        def other():
            try:
                with b.cursor() as cur:
                    cur.execute('SELECT pg_sleep(2), 1')
                    result['b'] = cur.fetchone()[1]
            except psycopg2.Error as e:
                result['b'] = e
        t = threading.Thread(target=other)
        t.start()
        err, _ = self.run_sleep_and_cancel(a)
        t.join()
        self.assertEqual(getattr(err, 'pgcode', None), '57014', repr(err))
        self.assertEqual(result['b'], 1, 'the other session was cancelled too')

    def test_cancel_while_idle_is_harmless(self):
        c = self.connect()
        c.cancel()
        self.assertEqual(self.scalar(c, 'SELECT 3'), 3)

    @proxy_only
    def test_backend_key_is_ddlguards_own(self):
        c = self.connect()
        server_pid = self.scalar(c, 'SELECT pg_backend_pid()')
        self.assertNotEqual(c.get_backend_pid(), server_pid,
                            'the client got the server backend pid in BackendKeyData')

    @proxy_only
    def test_backend_keys_are_distinct(self):
        conns = [self.connect() for _ in range(50)]
        pids = {c.get_backend_pid() for c in conns}
        self.assertEqual(len(pids), 50, 'two sessions got the same BackendKeyData pid')

    @proxy_only
    def test_bogus_cancel_key_is_ignored(self):
        c = self.connect()
        pid = c.get_backend_pid()
        result = {}

        def sleeper():
            try:
                with c.cursor() as cur:
                    cur.execute('SELECT pg_sleep(1.5), 1')
                    result['v'] = cur.fetchone()[1]
            except psycopg2.Error as e:
                result['v'] = e
        t = threading.Thread(target=sleeper)
        t.start()
        time.sleep(0.3)
        for key in ((pid, 12345), (pid ^ 0x5a5a, 777), (0, 0)):
            with wire.Conn(self.proxy.host, self.proxy.port) as k:
                k.send(wire.cancel_request(*key))
                self.assertTrue(k.wait_closed(5), 'cancel socket not closed')
        t.join()
        self.assertEqual(result['v'], 1, 'a cancel with a wrong key cancelled the query')


class TestCopy(RelayTestCase):
    ROWS = 1_100_000          # about 105 MB of COPY text

    class Source:
        """A file-like object producing the COPY text rows, hashing what it hands out."""

        def __init__(self, rows):
            self.rows, self.next, self.buf = rows, 0, b''
            self.md5 = hashlib.md5()
            self.size = 0

        def read(self, n=65536):
            while len(self.buf) < n and self.next < self.rows:
                end = min(self.rows, self.next + 2000)
                self.buf += b''.join(b'%d\t%s\n' % (i, (b'%08x' % (i * 2654435761 % 2**32)) * 11)
                                     for i in range(self.next, end))
                self.next = end
            out, self.buf = self.buf[:n], self.buf[n:]
            self.md5.update(out)
            self.size += len(out)
            return out

        readline = read

    class Sink:
        def __init__(self):
            self.md5 = hashlib.md5()
            self.size = 0

        def write(self, data):
            data = data.encode() if isinstance(data, str) else data
            self.md5.update(data)
            self.size += len(data)

    def test_copy_100mb_both_directions(self):
        c = self.connect()
        table = f'copy_big_{os.getpid()}'
        with c.cursor() as cur:
            cur.execute(f'DROP TABLE IF EXISTS {table}')
            cur.execute(f'CREATE UNLOGGED TABLE {table} (id int, payload text)')
            self.addCleanup(self.pg.query, f'DROP TABLE IF EXISTS {table}')
            src = self.Source(self.ROWS)
            cur.copy_expert(f'COPY {table} FROM STDIN', src, size=256 * 1024)
            self.assertGreater(src.size, 100 * 1024 * 1024)
            self.assertEqual(cur.rowcount, self.ROWS)
            sink = self.Sink()
            cur.copy_expert(f'COPY (SELECT * FROM {table} ORDER BY id) TO STDOUT', sink)
        # the server's own checksum of what it stored
        server_md5, count = self.pg.query(
            f"SELECT md5(string_agg(id || E'\\t' || payload || E'\\n', '' ORDER BY id)), count(*) "
            f"FROM {table}")[0]
        self.assertEqual(count, self.ROWS)
        self.assertEqual(server_md5, src.md5.hexdigest(), 'COPY FROM STDIN stored different data')
        self.assertEqual(sink.size, src.size)
        self.assertEqual(sink.md5.hexdigest(), src.md5.hexdigest(), 'COPY TO STDOUT differs')

    def test_copy_in_error_and_copy_fail(self):
        """A bad row makes the server end COPY with an error; CopyFail from the client too. The
        session stays usable after both."""
        c = self.connect()
        with c.cursor() as cur:
            cur.execute('CREATE TEMP TABLE t (id int)')
            with self.assertRaises(psycopg2.errors.InvalidTextRepresentation):
                cur.copy_expert('COPY t FROM STDIN', self.Lines([b'1\n', b'2\n', b'x\n', b'4\n']))
            cur.execute('SELECT count(*) FROM t')
            self.assertEqual(cur.fetchone()[0], 0)
        with wire.Conn(self.proxy.host, self.proxy.port) as w:
            w.login('trust_user', APPDB)
            w.send(wire.query('CREATE TEMP TABLE u (id int)'))
            w.recv_ready()
            w.send(wire.query('COPY u FROM STDIN'))
            self.assertEqual(w.recv().kind, b'G')
            w.send(wire.copy_data(b'1\n2\n') + wire.msg(b'f', wire.cstr('client gave up')))
            msgs = w.recv_ready()
            self.assertEqual(wire.first_error(msgs).sqlstate, '57014', msgs)
            self.assertEqual(w.rows('SELECT count(*) FROM u'), [['0']])

    class Lines:
        def __init__(self, lines):
            self.data = b''.join(lines)

        def read(self, n=65536):
            out, self.data = self.data[:n], self.data[n:]
            return out

        readline = read


def run_pipeline(host, port, n=1000):
    """Runs c/pipeline.c (a libpq pipeline of n queries) against host:port."""
    exe = compile_c('pipeline')
    conninfo = f'host={host} port={port} user=trust_user dbname={APPDB} sslmode=disable'
    return subprocess.run([exe, conninfo, str(n)], capture_output=True, text=True, timeout=120)


class TestPipeline(RelayTestCase):
    def test_pipeline_1000_queries(self):
        p = run_pipeline(self.proxy.host, self.proxy.port)
        self.assertEqual(p.returncode, 0, p.stdout[-3000:] + p.stderr)
        summary = p.stdout.strip().splitlines()[-1]
        # 3 setup items + 1000 queries + 10 syncs; 2 errors; 99 + 49 queries skipped until Sync
        self.assertEqual(summary, 'summary: items=1013 syncs=10 errors=2 aborted=148 failures=0')

    @proxy_only
    def test_pipeline_transcript_matches_direct(self):
        direct = run_pipeline(self.pg.host, self.pg.port)
        proxied = run_pipeline(self.proxy.host, self.proxy.port)
        self.assertEqual(direct.returncode, 0, direct.stdout[-2000:])
        self.assertEqual(proxied.stdout.splitlines(), direct.stdout.splitlines())


class TestExtendedProtocol(RelayTestCase):
    """Raw extended-protocol sequences; every byte after login must equal PostgreSQL's."""

    STEPS = [
        # named statement, named portal, Describe, partial Executes (PortalSuspended), Close
        (wire.parse('s1', 'SELECT $1::int4 + 1 AS v', [23]) +
         wire.bind('p1', 's1', ['41']) + wire.describe(b'P', 'p1') + wire.execute('p1') +
         wire.parse('', 'SELECT g, repeat(\'x\', g) FROM generate_series(1, 10) g') +
         wire.bind('cur', '') + wire.execute('cur', 3) + wire.execute('cur', 3) +
         wire.execute('cur', 0) + wire.close(b'P', 'cur') + wire.sync(), 1),
        # error in the middle: everything until Sync is skipped, one ReadyForQuery
        (wire.parse('', 'SELECT 1') + wire.bind('', '') + wire.execute('') +
         wire.parse('bad', 'SELEC 2') + wire.bind('', 'bad') + wire.execute('') +
         wire.parse('', 'SELECT 3') + wire.bind('', '') + wire.execute('') +
         wire.query('SELECT 4') + wire.sync(), 1),
        (wire.parse('', 'SELECT 5') + wire.bind('', '') + wire.execute('') + wire.sync(), 1),
        # Flush gets the responses without a ReadyForQuery; Sync then ends the batch
        (wire.parse('s2', 'SELECT $1::text') + wire.flush(), 0),
        (wire.bind('', 's2', ['flushed']) + wire.execute('') + wire.sync(), 1),
        # binary parameters and results
        (wire.bind('', 's1', [struct.pack('!i', 99)], [1], [1]) + wire.execute('') + wire.sync(), 1),
        # runtime error at Execute inside a transaction block, then ROLLBACK
        (wire.query('BEGIN'), 1),
        (wire.parse('', 'SELECT 1 / $1::int4') + wire.bind('', '', ['0']) + wire.execute('') +
         wire.sync(), 1),
        (wire.query('SELECT 1'), 1),
        (wire.query('ROLLBACK'), 1),
        (wire.describe(b'S', 's1') + wire.close(b'S', 's1') + wire.close(b'S', 's1') +
         wire.describe(b'S', 's1') + wire.sync(), 1),
        # empty query through the extended protocol
        (wire.parse('', '') + wire.bind('', '') + wire.describe(b'P', '') + wire.execute('') +
         wire.sync(), 1),
        # COPY through the extended protocol: the server ignores the Sync sent during copy-in,
        # so the client sends another one after CopyDone (what libpq does)
        (wire.query('CREATE TEMP TABLE ext_copy (v int)'), 1),
        (wire.parse('', 'COPY ext_copy FROM STDIN') + wire.bind('', '') + wire.execute('') +
         wire.sync(), 0),
        (wire.copy_data(b'1\n2\n') + wire.copy_data(b'3\n') + wire.copy_done() + wire.sync(), 1),
        (wire.parse('', 'COPY ext_copy TO STDOUT') + wire.bind('', '') + wire.execute('') +
         wire.sync(), 1),
        (wire.parse('', 'COPY ext_copy FROM STDIN') + wire.bind('', '') + wire.execute('') +
         wire.sync(), 0),
        (wire.copy_data(b'4\n') + wire.msg(b'f', wire.cstr('abandoned')) + wire.sync(), 1),
        (wire.query('SELECT sum(v) FROM ext_copy'), 1),
        # many small messages in one write
        (b''.join(wire.parse('', f'SELECT {i}') + wire.bind('', '') + wire.execute('')
                  for i in range(300)) + wire.sync(), 1),
    ]

    def check_shape(self, msgs):
        kinds = b''.join(m.kind for m in msgs)
        self.assertEqual(kinds.count(b'Z'), sum(z for _, z in self.STEPS))
        self.assertEqual(kinds.count(b's'), 2, 'two PortalSuspended expected')
        errors = [m.sqlstate for m in msgs if m.kind == b'E']
        self.assertEqual(errors, ['42601', '22012', '25P02', '26000', '57014'])
        self.assertIn(b'I', kinds)          # EmptyQueryResponse
        self.assertEqual(kinds.count(b'G'), 2)
        self.assertIn(b'H', kinds)
        # nothing between the ErrorResponse of step 2 and its ReadyForQuery
        i = kinds.index(b'E')
        self.assertEqual(kinds[i + 1:i + 2], b'Z')

    def test_sequences_match_direct(self):
        direct, proxied = direct_and_proxy(self)
        expected = transcript(direct, self.STEPS)
        self.check_shape(expected)
        got = transcript(proxied, self.STEPS)
        self.check_shape(got)
        assert_same_transcript(self, got, expected)


class TestSimpleProtocol(RelayTestCase):
    STEPS = [
        (wire.query('CREATE TEMP TABLE s (id int PRIMARY KEY, v text)'), 1),
        (wire.query("INSERT INTO s VALUES (1, 'a'), (2, 'b') RETURNING id"), 1),
        (wire.query('SELECT 1; SELECT 2; SELECT * FROM s ORDER BY id'), 1),
        (wire.query('SELECT 1; SELEC 2'), 1),                  # syntax error: nothing runs
        (wire.query('BEGIN; SELECT 1/0;'), 1),                  # C E Z(E)
        (wire.query('SELECT 1'), 1),                            # 25P02 in a failed transaction
        (wire.query('ROLLBACK'), 1),
        (wire.query(''), 1),                                    # EmptyQueryResponse
        (wire.query("DO $$ BEGIN RAISE NOTICE 'hello %', 42; END $$"), 1),
        (wire.query("SET application_name = 'changed'"), 1),   # ParameterStatus
        (wire.query('LISTEN chan; NOTIFY chan, \'payload\''), 1),
        (wire.query('INSERT INTO s VALUES (1, \'dup\')'), 1),  # unique violation with detail
        (wire.query('SELECT repeat(\'y\', 100000)'), 1),
        (wire.query('COPY s FROM STDIN'), 0),
        (wire.copy_data(b'3\tc\n4\td\n') + wire.copy_done(), 1),
        (wire.query('COPY s TO STDOUT'), 1),
        (wire.query('SELECT 1') + wire.query('SELECT 2') + wire.query('SELECT 3'), 3),
        (wire.query("DO $$ BEGIN FOR i IN 1..5000 LOOP RAISE NOTICE 'notice %', i; END LOOP; END $$"), 1),
        # COPY inside a multi-statement Query: the statements after it run once COPY is done
        (wire.query('COPY s FROM STDIN; SELECT 42'), 0),
        (wire.copy_data(b'5\te\n') + wire.copy_done(), 1),
        # a bare Sync is answered with ReadyForQuery, a bare Flush with nothing
        (wire.sync() + wire.flush() + wire.sync(), 2),
        # CopyData/CopyDone outside COPY are ignored by the server
        (wire.copy_data(b'stray') + wire.copy_done() + wire.query('SELECT 7'), 1),
    ]

    def test_sequences_match_direct(self):
        direct, proxied = direct_and_proxy(self)
        expected = transcript(direct, self.STEPS)
        kinds = b''.join(m.kind for m in expected)
        self.assertIn(b'A', kinds)
        self.assertIn(b'I', kinds)
        got = transcript(proxied, self.STEPS)
        assert_same_transcript(self, got, expected)


class TestLargeValues(RelayTestCase):
    SIZE = 50 * 1024 * 1024

    def test_50mb_text_row_simple_protocol(self):
        c = self.connect()
        value = (hashlib.sha256(b'seed').hexdigest() * (self.SIZE // 64 + 1))[:self.SIZE]
        with c.cursor() as cur:
            cur.execute('CREATE TEMP TABLE big (id int, data text)')
            cur.execute('INSERT INTO big VALUES (1, %s)', (value,))
            cur.execute('SELECT md5(data), length(data) FROM big')
            self.assertEqual(cur.fetchone(), (hashlib.md5(value.encode()).hexdigest(), self.SIZE))
            cur.execute('SELECT data FROM big')
            back = cur.fetchone()[0]
        self.assertEqual(len(back), self.SIZE)
        self.assertTrue(back == value, 'the 50 MB value came back different')

    def test_50mb_bytea_extended_protocol(self):
        data = os.urandom(self.SIZE)
        with wire.Conn(self.proxy.host, self.proxy.port, timeout=60) as c:
            c.login('trust_user', APPDB)
            c.rows('CREATE TEMP TABLE bin (data bytea)')
            c.send(wire.parse('', 'INSERT INTO bin VALUES ($1::bytea)') +
                   wire.bind('', '', [data], [1]) + wire.execute('') + wire.sync())
            msgs = c.recv_ready()
            self.assertIsNone(wire.first_error(msgs), msgs)
            self.assertEqual(c.rows('SELECT md5(data), length(data) FROM bin'),
                             [[hashlib.md5(data).hexdigest(), str(self.SIZE)]])
            c.send(wire.parse('', 'SELECT data FROM bin') + wire.bind('', '', [], [], [1]) +
                   wire.execute('') + wire.sync())
            rows = [m for m in c.recv_ready() if m.kind == b'D']
            self.assertEqual(len(rows), 1)
            self.assertTrue(wire.decode_row(rows[0].body, binary=True)[0] == data,
                            'the 50 MB bytea came back different')


class TestConcurrency(RelayTestCase):
    CLIENTS = 200

    def test_200_concurrent_clients(self):
        self.assertProxyServes()
        time.sleep(0.3)
        fds_before = self.proxy.fd_count() if self.proxy.pid else 0
        barrier = threading.Barrier(self.CLIENTS, timeout=120)
        errors = []
        conns = []

        def client(n):
            try:
                c = psycopg2.connect(self.conninfo('md5' if n % 2 else 'trust', connect_timeout=60,
                                                   application_name=f'conc-{n}'))
                conns.append(c)
                c.autocommit = True
                barrier.wait()           # all 200 sessions are open at once
                with c.cursor() as cur:
                    for q in range(10):
                        cur.execute('SELECT %s::int * %s::int, current_setting(%s)',
                                    (n, q, 'application_name'))
                        row = cur.fetchone()
                        if row != (n * q, f'conc-{n}'):
                            errors.append(f'client {n} query {q}: {row}')
                    cur.execute('SELECT count(*) FROM generate_series(1, 20000)')
                    if cur.fetchone()[0] != 20000:
                        errors.append(f'client {n}: bad count')
            except Exception as e:   # noqa: BLE001 (reported below)
                errors.append(f'client {n}: {e!r}')
                barrier.abort()
        threads = [threading.Thread(target=client, args=(n,)) for n in range(self.CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        for c in conns:
            c.close()
        self.assertEqual(errors[:10], [])
        self.assertEqual(len(conns), self.CLIENTS)
        if self.proxy.pid:
            # every client and server socket is released once the clients are gone
            wait_for(lambda: self.proxy.fd_count() <= fds_before, 20,
                     what=f'ddlguard fd count back to {fds_before} (now {self.proxy.fd_count()})')


class TestStartupParameters(RelayTestCase):
    def test_parameters_forwarded_unchanged(self):
        params = {
            'application_name': 'ddlg-it-app',
            'extra_float_digits': '3',
            'options': '-c search_path=foo -c work_mem=12MB',
            'DateStyle': 'ISO, DMY',
            'TimeZone': 'Asia/Tokyo',
            'client_encoding': 'LATIN1',
        }
        with wire.Conn(self.proxy.host, self.proxy.port) as c:
            c.login('trust_user', APPDB, **params)
            for name in ('application_name', 'DateStyle', 'TimeZone', 'client_encoding'):
                self.assertEqual(c.params.get(name), params[name], f'ParameterStatus {name}')
            rows = c.rows("SELECT current_setting('application_name'), "
                          "current_setting('extra_float_digits'), current_setting('search_path'), "
                          "current_setting('work_mem'), current_schema(), pg_backend_pid()")
            self.assertEqual(rows[0][:5], ['ddlg-it-app', '3', 'foo', '12MB', 'foo'])
            server_pid = int(rows[0][5])
            self.assertEqual(c.rows('SHOW extra_float_digits'), [['3']])
            # and the server's own view of the session
            self.assertEqual(self.pg.query('SELECT application_name FROM pg_stat_activity '
                                           'WHERE pid = %s', (server_pid,)), [('ddlg-it-app',)])

    def test_parameter_status_same_as_direct(self):
        def login_params(addr):
            with wire.Conn(*addr) as c:
                msgs = c.login('trust_user', APPDB, application_name='ps-check')
            return sorted(m.body for m in msgs if m.kind == b'S')
        direct, proxied = direct_and_proxy(self)
        self.assertEqual(login_params(proxied), login_params(direct))

    def test_long_startup_packet(self):
        """A 9 kB StartupMessage (limit 10000) with many custom settings arrives whole."""
        params = {f'ddlg.k{i}': f'value-{i}' for i in range(100)}
        params['ddlg.long'] = 'L' * 7000
        with wire.Conn(self.proxy.host, self.proxy.port) as c:
            c.login('trust_user', APPDB, **params)
            rows = c.rows("SELECT current_setting('ddlg.k0'), current_setting('ddlg.k99'), "
                          "length(current_setting('ddlg.long'))")
        self.assertEqual(rows, [['value-0', 'value-99', '7000']])

    def test_protocol_3_2_is_negotiated_down(self):
        """A client asking for 3.2 (libpq 18 can) must be told 3.0 with NegotiateProtocolVersion,
        as PostgreSQL 15 itself does, before authentication completes."""
        with wire.Conn(self.proxy.host, self.proxy.port) as c:
            c.send(wire.startup({'user': 'trust_user', 'database': APPDB}, version=196610))
            msgs = c.finish_login('trust_user')
            v = [m for m in msgs if m.kind == b'v']
            self.assertEqual(len(v), 1, f'no NegotiateProtocolVersion: {msgs}')
            self.assertEqual(v[0].int32(), 196608)
            kinds = b''.join(m.kind for m in msgs)
            self.assertLess(kinds.index(b'v'), kinds.index(b'R'))
            key = [m for m in msgs if m.kind == b'K'][0]
            self.assertEqual(len(key.body), 8, '3.0 BackendKeyData has a 4-byte secret')
            self.assertEqual(c.rows('SELECT 1'), [['1']])

    def test_unknown_protocol_option_is_reported(self):
        with wire.Conn(self.proxy.host, self.proxy.port) as c:
            c.send(wire.startup({'user': 'trust_user', 'database': APPDB, '_pq_.ddlg_test': '1'}))
            msgs = c.finish_login('trust_user')
            v = [m for m in msgs if m.kind == b'v']
            self.assertEqual(len(v), 1, f'no NegotiateProtocolVersion: {msgs}')
            self.assertIn(b'_pq_.ddlg_test', v[0].body)
            self.assertEqual(c.rows('SELECT 1'), [['1']])

    def test_query_in_same_packet_as_startup(self):
        """Bytes that arrive with the StartupMessage (a Query, for a trust login) are not lost."""
        with wire.Conn(self.proxy.host, self.proxy.port) as c:
            c.send(wire.startup({'user': 'trust_user', 'database': APPDB}) + wire.query('SELECT 314'))
            c.finish_login('trust_user')
            rows = [wire.decode_row(m.body) for m in c.recv_ready() if m.kind == b'D']
        self.assertEqual(rows, [['314']])

    def test_psycopg2_options_and_application_name(self):
        c = self.connect(options='-c search_path=foo -c extra_float_digits=3',
                         application_name='psy-app')
        with c.cursor() as cur:
            cur.execute("SHOW search_path")
            self.assertEqual(cur.fetchone()[0], 'foo')
            cur.execute("SELECT current_setting('application_name'), "
                        "current_setting('extra_float_digits')")
            self.assertEqual(cur.fetchone(), ('psy-app', '3'))


class TestBackpressure(RelayTestCase):
    @proxy_only
    def test_slow_reader_does_not_grow_proxy_memory(self):
        """A ~300 MB result to a client that reads nothing for a while: ddlguard must stop
        reading from the server instead of buffering the result."""
        base = self.proxy.rss_kb()
        with wire.Conn(self.proxy.host, self.proxy.port, timeout=60) as c:
            c.login('trust_user', APPDB, application_name='slow-reader')
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            c.send(wire.query("SELECT repeat('x', 1000) FROM generate_series(1, 300000)"))
            time.sleep(5)
            grown_mb = (self.proxy.rss_kb() - base) / 1024
            self.assertLess(grown_mb, 100, f'ddlguard grew by {grown_mb:.0f} MB for an unread result')
            # now read it all: nothing lost
            rows = 0
            while True:
                m = c.recv()
                if m.kind == b'D':
                    rows += 1
                elif m.kind == b'Z':
                    break
            self.assertEqual(rows, 300000)


class TestAsyncServerMessages(RelayTestCase):
    """Messages the server sends on its own while the client is idle must reach the client."""

    def test_notification_reaches_idle_client(self):
        with wire.Conn(self.proxy.host, self.proxy.port) as c:
            c.login('trust_user', APPDB)
            c.rows('LISTEN ddlg_chan')
            self.pg.query("NOTIFY ddlg_chan, 'hello idle'")
            m = c.recv()            # nothing sent: the proxy must relay it by itself
            self.assertEqual(m.kind, b'A', m)
            self.assertEqual(m.body[4:].split(b'\0')[:2], [b'ddlg_chan', b'hello idle'])

    def test_idle_session_timeout_fatal_is_forwarded(self):
        with wire.Conn(self.proxy.host, self.proxy.port) as c:
            c.login('trust_user', APPDB, options='-c idle_session_timeout=1000')
            c.settimeout(15)
            m = c.recv()
            self.assertEqual(m.kind, b'E', m)
            self.assertEqual((m.fields().get('S'), m.sqlstate), ('FATAL', '57P05'), m.fields())
            self.assertTrue(c.wait_closed(5), 'client not closed after the server went away')

    def test_terminated_backend_is_reported(self):
        with wire.Conn(self.proxy.host, self.proxy.port) as c:
            c.login('trust_user', APPDB)
            pid = int(c.rows('SELECT pg_backend_pid()')[0][0])
            self.pg.query('SELECT pg_terminate_backend(%s)', (pid,))
            m = c.recv()
            self.assertEqual(m.kind, b'E', m)
            self.assertEqual(m.sqlstate, '57P01', m.fields())
            self.assertTrue(c.wait_closed(5))
        c = self.connect()
        pid = self.scalar(c, 'SELECT pg_backend_pid()')
        self.pg.query('SELECT pg_terminate_backend(%s)', (pid,))
        time.sleep(0.3)
        with self.assertRaises(psycopg2.OperationalError):
            self.scalar(c, 'SELECT 1')

    def test_backend_terminated_mid_result(self):
        with wire.Conn(self.proxy.host, self.proxy.port, timeout=20) as c:
            c.login('trust_user', APPDB)
            pid = int(c.rows('SELECT pg_backend_pid()')[0][0])
            c.send(wire.query("SELECT repeat('z', 1000) FROM generate_series(1, 2000000)"))
            for _ in range(1000):
                c.recv()
            self.pg.query('SELECT pg_terminate_backend(%s)', (pid,))
            end = None
            try:
                while True:
                    m = c.recv()
                    if m.kind in (b'E', b'Z'):
                        end = m
                        break
            except wire.Closed:
                pass
            if end is not None:
                self.assertEqual(end.kind, b'E', 'the query finished despite the termination')
                # PostgreSQL's own FATAL 57P01; or, when the backend was terminated while blocked
                # writing to ddlguard, it sends nothing (ProcessClientWriteInterrupt: it may be
                # mid-message) and ddlguard says the server went away.
                self.assertIn(end.sqlstate, ('57P01', '08006'), end.fields())
                if end.sqlstate == '08006':
                    self.assertIn('lost the connection to the upstream server', end.fields()['M'])
                self.assertTrue(c.wait_closed(10))
        self.assertProxyServes()


class TestFraming(RelayTestCase):
    def test_messages_sent_byte_by_byte(self):
        data = (wire.parse('', 'SELECT $1::int4 * 7') + wire.bind('', '', ['6']) +
                wire.execute('') + wire.sync() + wire.query('SELECT 99'))
        with wire.Conn(self.proxy.host, self.proxy.port) as c:
            c.login('trust_user', APPDB)
            for i in range(len(data)):
                c.send(data[i:i + 1])
                if i % 10 == 0:
                    time.sleep(0.002)
            msgs = c.recv_ready(2)
        rows = [wire.decode_row(m.body) for m in msgs if m.kind == b'D']
        self.assertEqual(rows, [['42'], ['99']])

    def test_thousands_of_queries_in_one_write(self):
        n = 5000
        with wire.Conn(self.proxy.host, self.proxy.port, timeout=60) as c:
            c.login('trust_user', APPDB)
            c.send(b''.join(wire.query(f'SELECT {i}') for i in range(n)))
            msgs = c.recv_ready(n)
        rows = [int(wire.decode_row(m.body)[0]) for m in msgs if m.kind == b'D']
        self.assertEqual(rows, list(range(n)))


class TestFunctionCall(RelayTestCase):
    def test_large_object_roundtrip(self):
        """libpq's large-object API uses FunctionCall ('F') messages."""
        data = os.urandom(3 * 1024 * 1024 + 17)
        c = self.connect(autocommit=False)
        lo = c.lobject(0, 'wb')
        lo.write(data)
        oid = lo.oid
        lo.close()
        c.commit()
        self.addCleanup(self.pg.query, 'SELECT lo_unlink(%s)', (oid,))
        lo = c.lobject(oid, 'rb')
        back = lo.read()
        lo.close()
        c.commit()
        self.assertTrue(back == data, 'the large object came back different')
        self.assertEqual(self.pg.query('SELECT md5(lo_get(%s))', (oid,))[0][0],
                         hashlib.md5(data).hexdigest())

"""Fault injection: what a client of ddlguard sees when something around it breaks, and that
ddlguard itself keeps serving everyone else. One scenario per test, named after the fault:

  TestUpstreamKilled      SIGKILL of the session's backend, and `pg_ctl stop -m immediate` of the
                          whole server, mid-query (pg_sleep, a streaming SELECT), mid-COPY (FROM
                          STDIN, TO STDOUT) and mid-migration-transaction
  TestUpstreamSilent      SIGSTOP of the postmaster: server_connect_timeout
  TestQueryTimeout        SIGSTOP of the session's backend mid-query: query_timeout
  TestClientStopsReading  a client that reads nothing of a large result: memory stays flat
  TestClientVanishes      a client that disappears mid-transaction (close, RST, mid-statement)
  TestSinksUnavailable    audit log on /dev/full or an unwritable path; staging ledger down
  TestBrokenReload        SIGHUP with a broken config file or a broken policy file

The upstream that is killed, stopped or frozen is a PostgreSQL cluster of this file's own
(`fault_cluster()`), never the harness's shared one. ddlguard routes `faultdb` to it and
`appdb` to the shared cluster, so "the other sessions carry on" is checked on sessions that
share the ddlguard process but not the broken server. docs/faults.md describes for users what
each fault looks like from a client.
"""

import os
import select
import signal
import socket
import struct
import sys
import threading
import time

import psycopg2

import wire
from harness import (APPDB, USERS, PGBIN, PgCluster, ProxyTestCase, as_postgres, at_exit,
                     chown_postgres, cluster, free_port, proxy_only, run, subdir, wait_for)

FAULTDB = 'faultdb'
# How long a client may wait for its error after a fault. Generous for a loaded CI machine
# running the ASan build; the latencies actually seen are printed at the end of the run
# (report(), tearDownModule()).
PROMPT = 5.0
LATENCIES = {}


def report(name, seconds):
    """Remembers a measured latency (printed at the end of the module's run)."""
    LATENCIES[name] = seconds


# ---------------------------------------------------------------------------------------------
# A PostgreSQL cluster this file may break

class FaultCluster(PgCluster):
    """A second cluster with the same roles and databases as the harness's, in its own
    directory, reusing the harness's certificates (PgCluster() would regenerate them)."""

    def __init__(self):
        self.dir = subdir('pg-faults')
        chown_postgres(self.dir)
        self.data = os.path.join(self.dir, 'data')
        self.log = os.path.join(self.dir, 'postgres.log')
        self.port = free_port()
        self.host = '127.0.0.1'
        self.certs = cluster().certs
        self.started = False

    def pg_ctl(self, *args, timeout=60):
        return run(as_postgres([os.path.join(PGBIN, 'pg_ctl'), '-D', self.data, '-l', self.log] +
                               list(args)), timeout=timeout)

    def stop_immediate(self):
        """The whole server goes away at once: postmaster and backends, no checkpoint."""
        self.pg_ctl('-m', 'immediate', '-w', 'stop')

    def start_again(self):
        self.pg_ctl('-w', '-t', '60', 'start')
        self.wait_ready()

    def wait_ready(self, timeout=30):
        """After a crash (a backend was SIGKILLed) PostgreSQL restarts every backend and
        replays WAL; wait until it takes connections again."""
        def ok():
            try:
                self.query('SELECT 1')
                return True
            except psycopg2.Error:
                return False
        wait_for(ok, timeout, interval=0.1, what='the fault cluster to accept connections')

    def postmaster_pid(self):
        with open(os.path.join(self.data, 'postmaster.pid')) as f:
            return int(f.readline())


_fault_cluster = None


def fault_cluster():
    global _fault_cluster
    if _fault_cluster is None:
        c = FaultCluster()
        c.start()
        _fault_cluster = c
    return _fault_cluster


def routes():
    own = fault_cluster()
    return {FAULTDB: f'host=127.0.0.1 port={own.port} dbname=appdb',
            APPDB: 'host={pg_host} port={pg_port} dbname=appdb'}


# ---------------------------------------------------------------------------------------------
# Reading what a client gets after a fault

class End:
    """How a session ended after a fault: the last ErrorResponse (or None), whether the
    connection closed, whether it closed in the middle of a message, and how long it took."""

    def __init__(self):
        self.error = None
        self.notices = []
        self.closed = False
        self.truncated = False
        self.seconds = None

    def __repr__(self):
        return (f'End(error={self.error!r}, notices={self.notices!r}, closed={self.closed}, '
                f'truncated={self.truncated}, seconds={self.seconds})')


def read_to_end(c, t0, timeout=PROMPT + 5):
    """Reads (and drops) results until an ErrorResponse and the close, or a ReadyForQuery."""
    end = End()
    c.settimeout(timeout)
    try:
        while True:
            m = c.recv()
            if m.kind == b'E':
                end.error = m
            elif m.kind == b'N':
                end.notices.append(m)
            elif m.kind == b'Z':
                break
    except wire.Closed as e:
        end.closed = True
        end.truncated = not str(e).startswith('connection closed (had 0 of')
    except (ConnectionResetError, BrokenPipeError):
        end.closed = True
    except socket.timeout:
        pass
    end.seconds = time.monotonic() - t0
    return end


def login(host, port, db=FAULTDB, app='faults'):
    c = wire.Conn(host, port, timeout=20)
    c.login(USERS['trust'][0], db, application_name=app)
    return c


class FaultCase(ProxyTestCase):
    """ddlguard in front of both clusters: faultdb (breakable) and appdb (shared)."""

    settings = {'server_tls_sslmode': 'disable'}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.own = fault_cluster()
        cls.databases = routes()

    def setUp(self):
        self.own.wait_ready()
        super().setUp()

    def wire(self, db=FAULTDB, app='faults'):
        c = login(self.proxy.host, self.proxy.port, db, app)
        self.addCleanup(c.close)
        return c

    def assert_upstream_error(self, end, what, sqlstates=('08006',)):
        """A clear error, promptly: ddlguard's FATAL 08006 (or the server's own last word)
        before the close, or, when the server died in the middle of a message, the close
        itself (nothing valid can follow half a message)."""
        self.assertTrue(end.closed, f'{what}: the connection stayed open: {end}')
        self.assertLess(end.seconds, PROMPT, f'{what}: error after {end.seconds:.1f} s: {end}')
        if not end.truncated:
            self.assertIsNotNone(end.error, f'{what}: closed without an error: {end}')
            self.assertIn(end.error.sqlstate, sqlstates, end.error.fields())
            self.assertEqual(end.error.fields().get('V'), 'FATAL', end.error.fields())
        report(what, end.seconds)

    def assert_bystander_fine(self, c, what):
        """A session on the other cluster, opened before the fault, still answers at once."""
        t0 = time.monotonic()
        self.assertEqual(c.rows('SELECT 6 * 7'), [['42']], what)
        self.assertLess(time.monotonic() - t0, 1.0, what)


# ---------------------------------------------------------------------------------------------
# 1. The upstream is killed

class Scenario:
    """Puts a fresh session through ddlguard into one phase of work on faultdb, so that a
    fault can hit it there; finish() returns how the session ended."""

    def __init__(self, case, name):
        self.case, self.name = case, name
        self.c = case.wire(app='fault-' + name)
        self.pid = int(self.c.rows('SELECT pg_backend_pid()')[0][0])

    def start(self):
        raise NotImplementedError

    def finish(self, t0):
        return read_to_end(self.c, t0)


class MidSleep(Scenario):
    def start(self):
        self.c.send(wire.query('SELECT pg_sleep(60)'))
        wait_for(lambda: self.case.own.query("SELECT wait_event FROM pg_stat_activity WHERE pid = %s",
                                             (self.pid,)) == [('PgSleep',)], 5, what='pg_sleep running')


class MidResult(Scenario):
    def start(self):
        self.c.send(wire.query("SELECT repeat('r', 500) FROM generate_series(1, 3000000)"))
        for _ in range(2000):
            self.c.recv()


class MidCopyOut(Scenario):
    def start(self):
        self.c.send(wire.query("COPY (SELECT i, repeat('o', 300) FROM generate_series(1, 3000000) i) TO STDOUT"))
        m = self.c.recv()
        assert m.kind == b'H', m
        for _ in range(2000):
            self.c.recv()


class MidCopyIn(Scenario):
    """COPY FROM STDIN that keeps sending rows until the connection tells it otherwise."""

    def start(self):
        self.c.rows('CREATE TEMP TABLE copy_in (i int, t text)')
        self.c.send(wire.query('COPY copy_in FROM STDIN'))
        m = self.c.recv()
        assert m.kind == b'G', m
        self.sent = 0
        self.pump(0.3)

    def pump(self, seconds):
        """Sends CopyData until `seconds` have passed or the socket has something to read."""
        chunk = wire.copy_data(b''.join(b'%d\t%s\n' % (i, b'i' * 200) for i in range(200)))
        deadline = time.monotonic() + seconds
        self.c.sock.setblocking(False)
        try:
            while time.monotonic() < deadline:
                r, w, _ = select.select([self.c.sock], [self.c.sock], [], 0.05)
                if r:
                    return True
                if w:
                    try:
                        self.c.sock.send(chunk)
                        self.sent += 1
                    except BlockingIOError:
                        pass
                    except (BrokenPipeError, ConnectionResetError):
                        return True
            return False
        finally:
            self.c.sock.setblocking(True)

    def finish(self, t0):
        self.pump(PROMPT + 5)
        return read_to_end(self.c, t0)


class MidMigration(Scenario):
    """A migration transaction, idle between two statements when the fault hits."""

    def start(self):
        for sql in ('BEGIN', 'CREATE TABLE fault_mig (id int)', 'ALTER TABLE fault_mig ADD COLUMN note text',
                    "INSERT INTO fault_mig VALUES (1, 'x')"):
            msgs = self.c.simple(sql)
            assert wire.first_error(msgs) is None, msgs
        time.sleep(0.2)

    def finish(self, t0):
        # The client's next statement; the error may already be waiting for it.
        try:
            self.c.send(wire.query('ALTER TABLE fault_mig ADD COLUMN more int'))
        except (BrokenPipeError, ConnectionResetError):
            pass
        return read_to_end(self.c, t0)


@proxy_only
class TestUpstreamKilled(FaultCase):
    """SIGKILL of the session's backend, and the whole server stopped at once, in each phase."""

    settings = {'server_tls_sslmode': 'disable', 'rules': 'default'}

    def tearDown(self):
        try:
            if not self.own.started:
                self.own.start_again()
                self.own.started = True
            self.own.wait_ready()
            self.own.query('DROP TABLE IF EXISTS fault_mig')
        finally:
            super().tearDown()

    def kill_backend(self, scenario_cls, sqlstates=('08006',)):
        other = self.wire(db=APPDB, app='bystander')
        s = scenario_cls(self, scenario_cls.__name__)
        s.start()
        os.kill(s.pid, signal.SIGKILL)
        t0 = time.monotonic()
        end = s.finish(t0)
        self.assert_upstream_error(end, f'backend SIGKILL, {scenario_cls.__name__}', sqlstates)
        self.assert_bystander_fine(other, 'a session on the other server')
        # PostgreSQL restarts every backend after one was killed (crash recovery): that is the
        # server's doing. Once it is back, new sessions through the same ddlguard work.
        self.own.wait_ready()
        wait_for(lambda: self._serves(), 20, interval=0.2, what='a new faultdb session')
        self.assert_bystander_fine(other, 'a session on the other server, after recovery')
        return end

    def stop_server(self, scenario_cls):
        other = self.wire(db=APPDB, app='bystander')
        s = scenario_cls(self, scenario_cls.__name__)
        s.start()
        t0 = time.monotonic()
        self.own.stop_immediate()
        self.own.started = False
        end = s.finish(t0)
        self.assert_upstream_error(end, f'server stopped, {scenario_cls.__name__}')
        if not end.truncated:
            # PostgreSQL's own word, a WARNING 57P01 (immediate shutdown), passed through first.
            # A backend blocked writing a result when the shutdown came may not send it (it
            # drops a message it cannot send whole), so for those only ddlguard's 08006 is sure.
            warned = [n.sqlstate for n in end.notices]
            if scenario_cls in (MidResult, MidCopyOut):
                self.assertIn(warned, ([], ['57P01']), end)
            else:
                self.assertEqual(warned, ['57P01'], end)
        self.assert_bystander_fine(other, 'a session on the other server while faultdb is down')
        # While it is down, a new faultdb session gets 08006 at once.
        with self.assertRaises(wire.LoginError) as cm:
            login(self.proxy.host, self.proxy.port)
        self.assertEqual(cm.exception.sqlstate, '08006', cm.exception.fields)
        self.own.start_again()
        self.own.started = True
        self.assertTrue(self._serves(), 'no new faultdb session after the server came back')
        self.assert_bystander_fine(other, 'a session on the other server, after the restart')
        return end

    def _serves(self):
        try:
            c = login(self.proxy.host, self.proxy.port)
        except (wire.LoginError, OSError, wire.Closed):
            return False
        try:
            return c.rows('SELECT 1') == [['1']]
        finally:
            c.close()

    # -- SIGKILL of the session's backend
    def test_backend_killed_mid_query(self):
        self.kill_backend(MidSleep)

    def test_backend_killed_mid_result(self):
        self.kill_backend(MidResult)

    def test_backend_killed_mid_copy_in(self):
        self.kill_backend(MidCopyIn)

    def test_backend_killed_mid_copy_out(self):
        self.kill_backend(MidCopyOut)

    def test_backend_killed_mid_migration_transaction(self):
        self.kill_backend(MidMigration)
        self.assertEqual(self.own.query("SELECT to_regclass('fault_mig') IS NULL"), [(True,)],
                         'the killed migration transaction was not rolled back')

    # -- the whole server stopped (pg_ctl stop -m immediate)
    def test_server_stopped_mid_query(self):
        self.stop_server(MidSleep)

    def test_server_stopped_mid_result(self):
        self.stop_server(MidResult)

    def test_server_stopped_mid_copy_in(self):
        self.stop_server(MidCopyIn)

    def test_server_stopped_mid_copy_out(self):
        self.stop_server(MidCopyOut)

    def test_server_stopped_mid_migration_transaction(self):
        self.stop_server(MidMigration)
        self.assertEqual(self.own.query("SELECT to_regclass('fault_mig') IS NULL"), [(True,)])

    def test_backend_killed_mid_query_tls_both_legs(self):
        """The same with TLS on both legs: the server's TLS session ends without close_notify,
        and ddlguard's FATAL goes out over the client's TLS session."""
        certs = self.pg.certs
        p = self.start_proxy({'client_tls_sslmode': 'require', 'client_tls_cert_file': certs.proxy,
                              'client_tls_key_file': certs.proxy_key, 'server_tls_sslmode': 'verify-full',
                              'server_tls_ca_file': certs.ca}, databases=routes())
        c = wire.Conn(p.host, p.port, timeout=20)
        self.addCleanup(c.close)
        c.send(wire.ssl_request())
        self.assertEqual(c.recv_byte(), b'S')
        c.start_tls(cafile=certs.ca)
        c.login(USERS['trust'][0], FAULTDB, application_name='fault-tls')
        self.assertEqual(c.rows('SHOW ssl'), [['on']])
        pid = int(c.rows('SELECT pg_backend_pid()')[0][0])
        self.assertEqual(self.own.query('SELECT ssl FROM pg_stat_ssl WHERE pid = %s', (pid,)), [(True,)])
        c.send(wire.query('SELECT pg_sleep(60)'))
        wait_for(lambda: self.own.query("SELECT wait_event FROM pg_stat_activity WHERE pid = %s", (pid,)) ==
                 [('PgSleep',)], 5, what='pg_sleep running')
        os.kill(pid, signal.SIGKILL)
        t0 = time.monotonic()
        self.assert_upstream_error(read_to_end(c, t0), 'backend SIGKILL, TLS on both legs')

    def test_psql_shows_the_error(self):
        """What a migration run by psql shows in the CI log when the backend dies under it:
        ddlguard's FATAL 08006 naming the upstream server (connected directly, psql prints
        only "SSL SYSCALL error: EOF detected" or "server closed the connection
        unexpectedly"). psycopg2 reports the same event as OperationalError without a
        SQLSTATE, here as it does with PostgreSQL itself: libpq drops a FATAL followed by EOF."""
        def kill_when_sleeping():
            wait_for(lambda: self.own.query("SELECT pid FROM pg_stat_activity WHERE application_name = "
                                            "'fault-psql' AND wait_event = 'PgSleep'"), 10, what='pg_sleep')
            for (pid,) in self.own.query("SELECT pid FROM pg_stat_activity WHERE application_name = 'fault-psql'"):
                os.kill(pid, signal.SIGKILL)
            killed.append(time.monotonic())
        killed = []
        t = threading.Thread(target=kill_when_sleeping)
        t.start()
        r = self.psql(self.conninfo(db=FAULTDB, application_name='fault-psql'),
                      '-c', 'BEGIN', '-c', 'CREATE TABLE fault_mig (id int)', '-c', 'SELECT pg_sleep(60)')
        done = time.monotonic()
        t.join()
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn('FATAL:  lost the connection to the upstream server', r.stderr)
        self.assertLess(done - killed[0], PROMPT)
        report('backend SIGKILL, psql', done - killed[0])


# ---------------------------------------------------------------------------------------------
# 2. The upstream stops answering

_frozen = set()


def freeze(pid):
    _frozen.add(pid)
    os.kill(pid, signal.SIGSTOP)


def thaw(pid):
    _frozen.discard(pid)
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass


# Tests thaw what they froze in a finally block; this covers a run killed in between (a
# frozen postmaster would also hang the cluster's shutdown at exit).
at_exit(lambda: [thaw(pid) for pid in list(_frozen)])


@proxy_only
class TestUpstreamSilent(FaultCase):
    """A frozen postmaster (SIGSTOP) still completes TCP connects, since the kernel queues
    them, and then says nothing."""

    settings = {'server_tls_sslmode': 'disable', 'server_connect_timeout': '2'}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        own = cls.own
        cls.databases = dict(cls.databases,
                             faultdb_tls=f'host=127.0.0.1 port={own.port} dbname=appdb server_tls_sslmode=prefer',
                             faultdb_socket=f'host={own.dir} port={own.port} dbname=appdb')

    def test_postmaster_stopped_connect_timeout(self):
        """server_connect_timeout covers the connect, the TLS negotiation and the wait for
        the server's first answer to the startup packet, on TCP with and without TLS and on
        a unix socket."""
        before = self.wire(app='fault-before-freeze')
        other = self.wire(db=APPDB, app='bystander')
        postmaster = self.own.postmaster_pid()
        try:
            freeze(postmaster)
            for db in (FAULTDB, 'faultdb_tls', 'faultdb_socket'):
                t0 = time.monotonic()
                with self.assertRaises(wire.LoginError) as cm:
                    login(self.proxy.host, self.proxy.port, db=db)
                took = time.monotonic() - t0
                e = cm.exception
                self.assertEqual((e.fields.get('V'), e.sqlstate), ('FATAL', '08006'), e.fields)
                self.assertIn('(server_connect_timeout)', e.fields.get('M', ''), e.fields)
                self.assertGreater(took, 1.5, e.fields)
                self.assertLess(took, 2 + PROMPT, e.fields)
                report(f'postmaster SIGSTOP, login via {db}', took)
            # Sessions that were logged in have backends of their own: they carry on.
            self.assertEqual(before.rows('SELECT 1'), [['1']])
            self.assert_bystander_fine(other, 'a session on the other server')
        finally:
            thaw(postmaster)
        self.assertEqual(login(self.proxy.host, self.proxy.port).rows('SELECT 2'), [['2']])



@proxy_only
class TestQueryTimeout(FaultCase):
    """A frozen backend says nothing in the middle of a query: query_timeout ends the wait."""

    settings = {'server_tls_sslmode': 'disable', 'query_timeout': '2'}

    def test_backend_stopped_query_timeout(self):
        other = self.wire(db=APPDB, app='bystander')
        c = self.wire(app='fault-frozen')
        pid = int(c.rows('SELECT pg_backend_pid()')[0][0])
        t0 = time.monotonic()
        self.assertEqual(wire.first_error(c.simple('SELECT pg_sleep(1)')), None)
        self.assertLess(time.monotonic() - t0, 2, 'a query shorter than query_timeout')
        size = self.proxy.log_size()
        c.send(wire.query('BEGIN; LOCK TABLE inject_log; SELECT pg_sleep(1)'))
        wait_for(lambda: self.own.query("SELECT wait_event FROM pg_stat_activity WHERE pid = %s", (pid,)) ==
                 [('PgSleep',)], 5, what='pg_sleep running')
        freeze(pid)
        try:
            t0 = time.monotonic()
            end = read_to_end(c, t0)
            self.assertTrue(end.closed, end)
            self.assertIsNotNone(end.error, end)
            self.assertEqual((end.error.fields().get('V'), end.error.sqlstate), ('FATAL', '08006'), end)
            self.assertIn('query_timeout', end.error.fields()['M'])
            self.assertGreater(end.seconds, 1.0, end)
            self.assertLess(end.seconds, 2 + PROMPT, end)
            report('backend SIGSTOP, query_timeout = 2', end.seconds)
            self.assertIn('query_timeout: the upstream server sent nothing for 2 s', self.proxy.log_text()[size:])
            self.assert_bystander_fine(other, 'a session on the other server')
        finally:
            thaw(pid)
        # Resumed, the backend acts on ddlguard's cancel (or finds its socket closed): the
        # lock it held goes with it.
        wait_for(lambda: not self.own.query("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)), PROMPT,
                 what='the frozen backend to end once resumed')

    def test_query_timeout_spares_slow_but_live_work(self):
        """query_timeout counts silence, not duration: a result that streams for longer, an
        idle transaction, a client that reads slowly and a COPY FROM STDIN whose client
        pauses are all left alone."""
        c = self.wire(app='fault-live')
        t0 = time.monotonic()
        rows = [m for m in c.simple("SELECT pg_sleep(0.05), repeat('x', 9000) FROM generate_series(1, 70)")
                if m.kind == b'D']
        self.assertEqual(len(rows), 70)
        self.assertGreater(time.monotonic() - t0, 3)
        self.assertEqual(wire.first_error(c.simple('BEGIN')), None)
        time.sleep(2.5)
        self.assertEqual(wire.first_error(c.simple('COMMIT')), None)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        c.send(wire.query("SELECT repeat('s', 1000) FROM generate_series(1, 100000)"))
        time.sleep(2.5)
        msgs = c.recv_ready()
        self.assertEqual(sum(1 for m in msgs if m.kind == b'D'), 100000)
        self.assertEqual(wire.first_error(c.simple('CREATE TEMP TABLE pause_in (t text)')), None)
        c.send(wire.query('COPY pause_in FROM STDIN'))
        self.assertEqual(c.recv().kind, b'G')
        c.send(wire.copy_data(b'one\n'))
        time.sleep(2.5)
        c.send(wire.copy_data(b'two\n') + wire.copy_done())
        self.assertEqual(wire.first_error(c.recv_ready()), None)
        self.assertEqual(c.rows('SELECT count(*) FROM pause_in'), [['2']])


# ---------------------------------------------------------------------------------------------
# 3. A client that stops reading

@proxy_only
class TestClientStopsReading(FaultCase):

    def rss_while_unread(self, sql, app, seconds=4.0):
        """Sends `sql` and reads nothing: ddlguard's RSS sampled every 0.25 s meanwhile."""
        c = wire.Conn(self.proxy.host, self.proxy.port, timeout=60)
        self.addCleanup(c.close)
        c.login(USERS['trust'][0], APPDB, application_name=app)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        c.send(wire.query(sql))
        time.sleep(1.0)    # buffers on the way fill up: the client's socket, ddlguard's watermark
        samples = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            samples.append(self.proxy.rss_kb())
            time.sleep(0.25)
        # The server is stuck writing to ddlguard, not the other way round.
        waits = self.pg.query("SELECT wait_event FROM pg_stat_activity WHERE application_name = %s", (app,))
        return c, samples, waits

    def check_flat(self, samples, waits, what):
        growth_mb = (samples[-1] - samples[0]) / 1024
        spread_mb = (max(samples) - min(samples)) / 1024
        self.assertEqual(waits, [('ClientWrite',)], f'{what}: the server is not blocked on ddlguard')
        # The result is ~1 GB; a proxy that buffered it would grow by hundreds of MB here.
        self.assertLess(growth_mb, 8, f'{what}: ddlguard grew {growth_mb:.1f} MB: {samples}')
        self.assertLess(spread_mb, 16, f'{what}: RSS moved {spread_mb:.1f} MB: {samples}')
        report(f'{what}: RSS growth over {len(samples) / 4:.0f} s (MB)', growth_mb)

    def test_unread_select_keeps_memory_flat(self):
        c, samples, waits = self.rss_while_unread(
            "SELECT repeat('m', 1000) FROM generate_series(1, 1000000)", 'fault-unread-select')
        self.check_flat(samples, waits, 'unread SELECT')
        # Reading resumes and loses nothing (the first rows are enough to show the flow).
        self.assertEqual(c.recv().kind, b'T')
        for _ in range(1000):
            self.assertEqual(c.recv().kind, b'D')

    def test_unread_copy_out_keeps_memory_flat(self):
        c, samples, waits = self.rss_while_unread(
            "COPY (SELECT repeat('c', 1000) FROM generate_series(1, 1000000)) TO STDOUT", 'fault-unread-copy')
        self.check_flat(samples, waits, 'unread COPY TO STDOUT')
        self.assertEqual(c.recv().kind, b'H')


# ---------------------------------------------------------------------------------------------
# 4. A client that vanishes mid-transaction

@proxy_only
class TestClientVanishes(FaultCase):
    """The client's socket goes away inside a transaction: PostgreSQL must roll back and
    release every lock, and the server connection must close, without waiting for anything."""

    def setUp(self):
        super().setUp()
        self.pg.psql_admin(f'DROP TABLE IF EXISTS vanish; CREATE TABLE vanish (id int); '
                           f'ALTER TABLE vanish OWNER TO {USERS["trust"][0]}')

    def begin_work(self, app):
        c = wire.Conn(self.proxy.host, self.proxy.port, timeout=20)
        c.login(USERS['trust'][0], APPDB, application_name=app)
        for sql in ('BEGIN', 'INSERT INTO vanish VALUES (1)', 'LOCK TABLE vanish IN ACCESS EXCLUSIVE MODE'):
            self.assertIsNone(wire.first_error(c.simple(sql)))
        self.assertEqual(len(self.pg.backends(application_name=app)), 1)
        return c

    def assert_rolled_back(self, app, t0, what):
        def gone():
            return (not self.pg.backends(application_name=app) and
                    not self.pg.query("SELECT 1 FROM pg_locks WHERE relation = 'vanish'::regclass"))
        wait_for(gone, PROMPT, interval=0.02, what=f'{what}: backend and locks gone')
        report(what, time.monotonic() - t0)
        self.assertEqual(self.pg.query('SELECT count(*) FROM vanish'), [(0,)], 'the insert was committed')
        # The table is free at once for everyone else.
        c = self.connect()
        with c.cursor() as cur:
            cur.execute("SET lock_timeout = '1s'")
            cur.execute('ALTER TABLE vanish ADD COLUMN IF NOT EXISTS later int')

    def test_close_mid_transaction(self):
        c = self.begin_work('fault-vanish-close')
        c.sock.close()              # FIN without a Terminate message
        self.assert_rolled_back('fault-vanish-close', time.monotonic(), 'client close, idle in transaction')

    def test_reset_mid_transaction(self):
        c = self.begin_work('fault-vanish-rst')
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        c.sock.close()              # RST
        self.assert_rolled_back('fault-vanish-rst', time.monotonic(), 'client RST, idle in transaction')

    def test_reset_while_statement_runs(self):
        """The statement keeps running after its client is gone (PostgreSQL notices a closed
        socket only when it next reads or writes it), so ddlguard cancels it."""
        c = self.begin_work('fault-vanish-busy')
        c.send(wire.query('SELECT pg_sleep(60)'))
        wait_for(lambda: self.pg.query("SELECT 1 FROM pg_stat_activity WHERE application_name = "
                                       "'fault-vanish-busy' AND wait_event = 'PgSleep'"), 5, what='pg_sleep')
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        c.sock.close()
        self.assert_rolled_back('fault-vanish-busy', time.monotonic(), 'client RST, statement running')

    def test_close_while_waiting_for_a_lock(self):
        """The migration tool dies while its ALTER waits behind another session's lock: the
        ALTER leaves the lock queue at once, so readers queued behind it go on."""
        holder = self.pg.admin()
        self.addCleanup(holder.close)
        holder.autocommit = False
        holder.cursor().execute('SELECT * FROM vanish')            # ACCESS SHARE, kept open
        c = wire.Conn(self.proxy.host, self.proxy.port, timeout=20)
        c.login(USERS['trust'][0], APPDB, application_name='fault-vanish-wait')
        self.assertIsNone(wire.first_error(c.simple('BEGIN')))
        c.send(wire.query('ALTER TABLE vanish ADD COLUMN blocked int'))
        wait_for(lambda: self.pg.query("SELECT 1 FROM pg_stat_activity WHERE application_name = "
                                       "'fault-vanish-wait' AND wait_event_type = 'Lock'"), 5, what='the lock wait')
        c.sock.close()
        t0 = time.monotonic()
        reader = self.connect()
        with reader.cursor() as cur:
            cur.execute("SET lock_timeout = '%ss'" % int(PROMPT))
            cur.execute('SELECT count(*) FROM vanish')              # queued behind the ALTER until it goes
            self.assertEqual(cur.fetchone(), (0,))
        report('client close while its ALTER waits for a lock: readers go on after', time.monotonic() - t0)
        holder.rollback()
        self.assertEqual(self.pg.query("SELECT count(*) FROM pg_attribute WHERE attrelid = 'vanish'::regclass "
                                       "AND attname = 'blocked'"), [(0,)])


# ---------------------------------------------------------------------------------------------
# 5. The audit log or the staging ledger is unavailable

def http_status(port, path):
    with socket.create_connection(('127.0.0.1', port), timeout=5) as sk:
        sk.sendall(f'GET {path} HTTP/1.0\r\n\r\n'.encode())
        return int(sk.makefile('rb').readline().split()[1])


@proxy_only
class TestSinksUnavailable(FaultCase):
    """Guarded DDL is denied (fail closed); every other statement goes on, on the same proxy
    and in the same session."""

    class_proxy = False

    def setUp(self):
        super().setUp()
        owner = USERS['trust'][0]
        self.pg.psql_admin(f'DROP TABLE IF EXISTS sink_t; CREATE TABLE sink_t (id int); ALTER TABLE sink_t OWNER TO {owner}')

    def psql_run(self, p, *sql, db=APPDB):
        args = []
        for q in sql:
            args += ['-c', q]
        return self.psql(self.conninfo(proxy=p, db=db), *args)

    def assert_ddl_denied_dml_fine(self, p, message, db=APPDB):
        c = wire.Conn(p.host, p.port, timeout=20)
        self.addCleanup(c.close)
        c.login(USERS['trust'][0], db, application_name='fault-sink')
        for sql in ('SELECT count(*) FROM sink_t', 'INSERT INTO sink_t VALUES (1)', 'UPDATE sink_t SET id = 2',
                    'DELETE FROM sink_t'):
            self.assertIsNone(wire.first_error(c.simple(sql)), sql)
        t0 = time.monotonic()
        err = wire.first_error(c.simple('ALTER TABLE sink_t ADD COLUMN denied int'))
        took = time.monotonic() - t0
        self.assertIsNotNone(err, 'the schema change ran')
        self.assertIn(message, err.fields()['M'], err.fields())
        self.assertLess(took, PROMPT)
        # The same session goes on.
        self.assertEqual(c.rows('SELECT 1'), [['1']])
        self.assertEqual(self.pg.query("SELECT count(*) FROM pg_attribute WHERE attrelid = 'sink_t'::regclass "
                                       "AND attname = 'denied'", db='appdb' if db == APPDB else 'appdb'), [(0,)])
        return err, took

    # -- audit log
    def test_audit_log_on_full_disk_denies_ddl(self):
        mport = free_port()
        p = self.start_proxy({'server_tls_sslmode': 'disable', 'audit_log': '/dev/full',
                              'metrics_listen': f'127.0.0.1:{mport}'})
        err, took = self.assert_ddl_denied_dml_fine(p, 'cannot write its audit log')
        self.assertEqual(err.sqlstate, '58030')
        self.assertEqual(http_status(mport, '/healthz'), 503)
        self.assertIn('cannot write the audit log /dev/full', p.log_text())
        report('audit log on /dev/full: DDL denied in', took)

    def test_audit_log_unwritable_at_start_refuses_to_start(self):
        p = self.start_proxy({'server_tls_sslmode': 'disable', 'audit_log': '/dev/null/audit.jsonl'}, start=False)
        r = run([p.command()[0], '-c', p.config_path], check=False, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('cannot open audit_log "/dev/null/audit.jsonl": Not a directory', r.stderr)

    def test_audit_log_gone_at_reopen_denies_ddl_until_fixed(self):
        """logrotate moved the log's directory away, or it became unwritable: SIGHUP cannot
        reopen the file. Schema changes stop (they used to run unaudited) until a later
        SIGHUP succeeds; the hash chain then continues."""
        d = os.path.join(subdir('faults-audit'), f'rot-{time.monotonic_ns()}')
        os.makedirs(d)
        path = os.path.join(d, 'audit.jsonl')
        p = self.start_proxy({'server_tls_sslmode': 'disable', 'audit_log': path})
        r = self.psql_run(p, 'ALTER TABLE sink_t ADD COLUMN before_rotation int')
        self.assertEqual(r.returncode, 0, r.stderr)
        os.rename(d, d + '.rotated')
        size = p.log_size()
        p.signal(signal.SIGHUP)
        wait_for(lambda: 'SIGHUP' in p.log_text()[size:], 5, what='the reload')
        time.sleep(0.2)
        err, _ = self.assert_ddl_denied_dml_fine(p, 'cannot write its audit log')
        self.assertEqual(err.sqlstate, '58030')
        self.assertIn(f'cannot open audit_log "{path}": No such file or directory; schema changes are denied '
                      f'until a SIGHUP reopens it', p.log_text()[size:])
        os.makedirs(d)
        size = p.log_size()
        p.signal(signal.SIGHUP)
        wait_for(lambda: 'audit log reopened' in p.log_text()[size:], 5, what='the reopen')
        r = self.psql_run(p, 'ALTER TABLE sink_t ADD COLUMN after_fix int')
        self.assertEqual(r.returncode, 0, r.stderr)
        p.stop()
        v = run([p.command()[0], 'audit', 'verify', path], check=False)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)

    # -- staging ledger
    def ledger_proxy(self):
        own = self.own
        mon, pw = USERS['scram']
        dbs = {'shop': 'host={pg_host} port={pg_port} dbname=appdb environment=production target=shop'}
        return self.start_proxy({'server_tls_sslmode': 'disable', 'monitor_user': mon, 'monitor_password': pw,
                                 'facts_timeout': '2',
                                 'ledger': f"host=127.0.0.1 port={own.port} dbname=appdb sslmode=disable"},
                                databases=dbs)

    def cluster_pids(self):
        pm = self.own.postmaster_pid()
        kids = run(['ps', '-o', 'pid=', '--ppid', str(pm)]).stdout.split()
        return [pm] + [int(k) for k in kids]

    def test_ledger_down_denies_ddl(self):
        p = self.ledger_proxy()
        # Reachable: denied because staging has not run it.
        self.assert_ddl_denied_dml_fine(p, 'has not run in staging', db='shop')
        self.own.stop_immediate()
        try:
            err, took = self.assert_ddl_denied_dml_fine(p, 'the ledger is unreachable', db='shop')
            self.assertEqual(err.sqlstate, '42501')
            report('ledger server stopped: DDL denied in', took)
        finally:
            self.own.start_again()
        # Back: the gate consults it again (the side connection reconnects with backoff).
        wait_for(lambda: 'has not run in staging' in self.psql_run(
            p, 'ALTER TABLE sink_t ADD COLUMN denied int', db='shop').stderr, 20, interval=0.5,
            what='the ledger to be consulted again')

    def test_ledger_frozen_denies_ddl_within_facts_timeout(self):
        p = self.ledger_proxy()
        self.assert_ddl_denied_dml_fine(p, 'has not run in staging', db='shop')
        pids = self.cluster_pids()
        try:
            for pid in pids:
                freeze(pid)
            err, took = self.assert_ddl_denied_dml_fine(p, 'the ledger is unreachable', db='shop')
            self.assertGreater(took, 1.5)
            report('ledger server frozen: DDL denied in', took)
        finally:
            for pid in pids:
                thaw(pid)


# ---------------------------------------------------------------------------------------------
# 6. SIGHUP with a broken configuration or policy

@proxy_only
class TestBrokenReload(FaultCase):
    class_proxy = False

    def reload(self, p, expect):
        size = p.log_size()
        p.signal(signal.SIGHUP)
        wait_for(lambda: expect in p.log_text()[size:], 5, what=f'"{expect}" in the log')
        self.assertTrue(p.alive())
        return p.log_text()[size:]

    def test_broken_config_keeps_the_old_one(self):
        settings = {'server_tls_sslmode': 'disable'}
        good = {'appdb': 'host={pg_host} port={pg_port} dbname=appdb',
                'alias': 'host={pg_host} port={pg_port} dbname=appdb2'}
        p = self.start_proxy(settings, databases=good)
        kept = wire.Conn(p.host, p.port)
        self.addCleanup(kept.close)
        kept.login(USERS['trust'][0], 'alias')

        def alias_db():
            c = wire.Conn(p.host, p.port)
            try:
                c.login(USERS['trust'][0], 'alias')
                return c.rows('SELECT current_database()')[0][0]
            except wire.LoginError as e:
                return e.sqlstate
            finally:
                c.close()

        self.assertEqual(alias_db(), 'appdb2')
        without_alias = {'appdb': good['appdb']}
        broken = [
            ('a syntax error', dict(settings), without_alias, 'this line is not an INI line',
             'expected "key = value"'),
            ('an invalid value', dict(settings, query_timeout='-1'), without_alias, '',
             'invalid value for query_timeout: "-1"'),
            ('an unknown key', dict(settings, query_timout='5'), without_alias, '', 'unknown setting "query_timout"'),
            ('a missing TLS key', dict(settings, client_tls_sslmode='allow', client_tls_cert_file='{proxy_cert}',
                                       client_tls_key_file='/nonexistent/proxy.key'), without_alias, '',
             'cannot load client_tls_key_file "/nonexistent/proxy.key": No such file or directory'),
            ('an unwritable audit log', dict(settings, audit_log='/dev/null/audit.jsonl'), without_alias, '',
             'cannot open audit_log "/dev/null/audit.jsonl"'),
        ]
        for what, s, dbs, extra, message in broken:
            with self.subTest(what):
                p.write_config(s, dbs)
                if extra:
                    with open(p.config_path, 'a') as f:
                        f.write(extra + '\n')
                text = self.reload(p, 'reload failed, keeping the previous configuration')
                self.assertIn(message, text)
                # The old configuration still applies: the route the new file drops works.
                self.assertEqual(alias_db(), 'appdb2', what)
        self.assertEqual(kept.rows('SELECT current_database()'), [['appdb2']])
        # A good file is taken: now the route is gone.
        p.write_config(settings, without_alias)
        self.reload(p, 'configuration reloaded')
        self.assertEqual(alias_db(), '3D000')

    def test_broken_policy_keeps_the_old_one(self):
        d = subdir('faults-policies')
        path = os.path.join(d, f'reload-{time.monotonic_ns()}.lua')

        def write(text):
            with open(path, 'w') as f:
                f.write(text)

        write('function on_statement(s) if s.tag == "DROP TABLE" then return deny("old policy v1") end end\n')
        p = self.start_proxy({'server_tls_sslmode': 'disable', 'policy_files': path})

        def drop():
            return self.psql(self.conninfo(proxy=p), '-c', 'DROP TABLE IF EXISTS reload_nothing').stderr

        self.assertIn('old policy v1', drop())
        broken = [
            ('a syntax error', 'function on_statement(s) return deny( end\n', ':1:'),
            ('an error while loading', 'error("policy refuses to load")\n', 'policy refuses to load'),
            ('no hook', 'x = 1\n', os.path.basename(path)),
            ('a sandbox violation at load', 'os.execute("true")\n', os.path.basename(path)),
        ]
        for what, text, message in broken:
            with self.subTest(what):
                write(text)
                log = self.reload(p, 'reload failed, keeping the previous configuration')
                self.assertIn(message, log)
                self.assertIn('old policy v1', drop(), f'{what}: the old policy no longer applies')
        os.rename(path, path + '.gone')
        log = self.reload(p, 'reload failed, keeping the previous configuration')
        self.assertIn('old policy v1', drop(), 'a missing policy file')
        os.rename(path + '.gone', path)
        write('function on_statement(s) if s.tag == "DROP TABLE" then return deny("new policy v2") end end\n')
        self.reload(p, 'configuration reloaded')
        self.assertIn('new policy v2', drop())


def tearDownModule():
    """Prints the latencies and growths measured, for the record (docs/faults.md quotes
    typical values)."""
    if LATENCIES:
        width = max(len(k) for k in LATENCIES)
        lines = [f'  {k:<{width}}  {v:6.2f}' for k, v in sorted(LATENCIES.items())]
        print('test_faults: measured (seconds, or MB where named)\n' + '\n'.join(lines), file=sys.stderr)

"""Routing and limits: [databases] routes, unknown databases, unreachable or silent upstreams,
max_client_conn, and the unix socket."""

import os
import socket
import struct
import threading
import time

import psycopg2

import wire
from harness import ProxyTestCase, APPDB, UNICODE_DB, free_port, proxy_only, subdir

DEAD_PORT = free_port()      # nothing listens here


class FakeServer:
    """A TCP server on a free loopback port; each connection is handled by `behaviour(sock)`
    in its own thread."""

    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            self.behaviour(c)
        except OSError:
            pass

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def read_packet(c):
    """Reads one untyped packet (SSLRequest or StartupMessage); returns its code."""
    head = c.recv(8, socket.MSG_WAITALL)
    length, code = struct.unpack('!ii', head)
    if length > 8:
        c.recv(length - 8, socket.MSG_WAITALL)
    return code


def read_startup(c, ssl_answer=b'N'):
    code = read_packet(c)
    while code in (wire.SSL_REQUEST, wire.GSSENC_REQUEST):
        c.sendall(ssl_answer if code == wire.SSL_REQUEST else b'N')
        code = read_packet(c)
    return code


def silent(c):
    time.sleep(60)


def ssl_yes_then_stall(c):
    read_packet(c)
    c.sendall(b'S')
    time.sleep(60)


def garbage_reply(c):
    read_startup(c)
    c.sendall(b'\xff' * 64)
    time.sleep(5)


def huge_length_reply(c):
    read_startup(c)
    c.sendall(b'R' + struct.pack('!i', 0x7ffffff0) + b'\0' * 16)
    time.sleep(10)


def close_at_once(c):
    read_startup(c)
    c.close()


def own_fatal(c):
    read_startup(c)
    body = b'SFATAL\0VFATAL\0C53300\0Msorry, too many clients already\0\0'
    c.sendall(wire.msg(b'E', body))
    c.close()


@proxy_only
class TestRoutes(ProxyTestCase):
    settings = {'server_connect_timeout': '2'}
    databases = {
        'appdb': 'host={pg_host} port={pg_port} dbname=appdb',
        'renamed': 'host={pg_host} port={pg_port} dbname=appdb2',
        'viasocket': 'host={pg_socket_dir} port={pg_port} dbname=appdb',
        'down': f'host=127.0.0.1 port={DEAD_PORT} dbname=appdb',
    }

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.silent_server = FakeServer(silent)
        cls.databases = dict(cls.databases,
                             silent=f'host=127.0.0.1 port={cls.silent_server.port} dbname=appdb')

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.silent_server.close()

    def login_error(self, db, user='trust_user'):
        with wire.Conn(self.proxy.host, self.proxy.port, timeout=20) as c:
            with self.assertRaises(wire.LoginError) as cm:
                c.login(user, db)
            f = cm.exception.fields
            self.assertEqual(f.get('S'), 'FATAL', f)
            self.assertEqual(f.get('V'), 'FATAL', f'no V field: {f}')
            self.assertTrue(c.wait_closed(5), 'connection still open after FATAL')
        return cm.exception

    def test_unknown_database_3D000(self):
        e = self.login_error('nosuchdb')
        self.assertEqual(e.sqlstate, '3D000', e.fields)
        self.assertIn('nosuchdb', e.fields.get('M', ''))
        p = self.psql(self.conninfo(db='nosuchdb'), '-c', 'SELECT 1')
        self.assertEqual(p.returncode, 2)
        self.assertIn('nosuchdb', p.stderr)

    def test_route_renames_database(self):
        c = self.connect(db='renamed')
        self.assertEqual(self.scalar(c, 'SELECT current_database()'), 'appdb2')

    def test_route_to_unix_socket(self):
        c = self.connect(db='viasocket')
        self.assertEqual(self.scalar(c, 'SELECT current_database()'), 'appdb')
        self.assertIsNone(self.scalar(c, 'SELECT inet_client_addr()'), 'not via the unix socket')

    def test_upstream_down_08006(self):
        t0 = time.monotonic()
        e = self.login_error('down')
        self.assertEqual(e.sqlstate, '08006', e.fields)
        self.assertLess(time.monotonic() - t0, 5)
        with self.assertRaises(psycopg2.OperationalError):
            self.connect(db='down')

    def test_silent_upstream_times_out(self):
        t0 = time.monotonic()
        e = self.login_error('silent')
        self.assertTrue(e.sqlstate.startswith('08'), e.fields)
        self.assertLess(time.monotonic() - t0, 10, 'server_connect_timeout=2 not applied')

    def test_others_served_while_an_upstream_is_silent(self):
        errors = []
        t = threading.Thread(target=lambda: errors.append(self.login_error('silent')))
        t.start()
        time.sleep(0.2)
        c = self.connect(db='appdb')
        for i in range(10):
            t0 = time.monotonic()
            self.assertEqual(self.scalar(c, 'SELECT %s', (i,)), i)
            self.assertLess(time.monotonic() - t0, 1.5)
        t.join(15)
        self.assertEqual(len(errors), 1, 'the client of the silent upstream got no error')

    def test_good_route_unaffected_by_bad_ones(self):
        c = self.connect(db='appdb')
        self.assertEqual(self.scalar(c, 'SELECT current_database()'), 'appdb')


@proxy_only
class TestWildcardRoute(ProxyTestCase):
    databases = {'*': 'host={pg_host} port={pg_port}'}

    def test_wildcard_passes_database_name(self):
        for db in ('appdb', 'appdb2'):
            c = self.connect(db=db)
            self.assertEqual(self.scalar(c, 'SELECT current_database()'), db)

    def test_database_name_needing_quotes(self):
        c = self.connect(db=UNICODE_DB)
        self.assertEqual(self.scalar(c, 'SELECT current_database()'), UNICODE_DB)

    def test_database_defaults_to_user(self):
        with wire.Conn(self.proxy.host, self.proxy.port) as c:
            with self.assertRaises(wire.LoginError) as cm:
                c.send(wire.startup({'user': 'trust_user'}))
                c.finish_login('trust_user')
        self.assertEqual(cm.exception.sqlstate, '3D000', cm.exception.fields)
        self.assertIn('"trust_user"', cm.exception.fields.get('M', ''))

    def test_database_missing_on_server(self):
        with wire.Conn(self.proxy.host, self.proxy.port) as c:
            with self.assertRaises(wire.LoginError) as cm:
                c.login('trust_user', 'not_on_server')
        # the server's own error, forwarded unchanged
        self.assertEqual(cm.exception.sqlstate, '3D000', cm.exception.fields)
        self.assertIn('not_on_server', cm.exception.fields.get('M', ''))


@proxy_only
class TestMaxClientConn(ProxyTestCase):
    settings = {'max_client_conn': '3'}

    def test_limit_53300_and_recovery(self):
        held = [psycopg2.connect(self.conninfo()) for _ in range(3)]
        try:
            with wire.Conn(self.proxy.host, self.proxy.port) as c:
                try:
                    c.login('trust_user', APPDB)
                    self.fail('a 4th client was accepted with max_client_conn=3')
                except wire.LoginError as e:
                    self.assertEqual(e.sqlstate, '53300', e.fields)
                    self.assertEqual(e.fields.get('S'), 'FATAL')
                    self.assertEqual(e.fields.get('V'), 'FATAL', e.fields)
                except wire.Closed:
                    self.fail('closed without ErrorResponse 53300')
            with self.assertRaises(psycopg2.OperationalError):
                psycopg2.connect(self.conninfo()).close()
        finally:
            held.pop().close()
        time.sleep(0.5)
        self.assertProxyServes()
        for c in held:
            c.close()

    def test_failed_logins_release_their_slot(self):
        for i in range(10):
            with wire.Conn(self.proxy.host, self.proxy.port) as c:
                if i % 3 == 2:
                    c.send(b'\xff' * 16)
                    self.assertTrue(c.wait_closed(5))
                    continue
                with self.assertRaises(wire.LoginError):
                    if i % 3 == 0:
                        c.login('trust_user', 'no_such_db_on_server')
                    else:
                        c.login('md5_user', APPDB, password='wrong')
        time.sleep(0.5)
        held = []
        try:
            for _ in range(3):
                held.append(psycopg2.connect(self.conninfo('scram')))
        finally:
            for c in held:
                c.close()


@proxy_only
class TestUnixSocket(ProxyTestCase):
    settings = {'unix_socket_dir': subdir('proxy-sock')}

    def test_psql_over_unix_socket(self):
        sock = os.path.join(subdir('proxy-sock'), f'.s.PGSQL.{self.proxy.port}')
        self.assertTrue(os.path.exists(sock), f'{sock} missing')
        p = self.psql(f"host={subdir('proxy-sock')} port={self.proxy.port} user=trust_user "
                      f"dbname={APPDB}", '-c', 'SELECT current_user')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), 'trust_user')

    def test_tcp_still_works(self):
        self.assertProxyServes()


@proxy_only
class TestUpstreamRestart(ProxyTestCase):
    def test_server_restart(self):
        """Sessions die with the server; ddlguard survives and serves new sessions after it."""
        c = self.connect()
        self.assertEqual(self.scalar(c, 'SELECT 1'), 1)
        self.pg.restart()
        with self.assertRaises(psycopg2.OperationalError):
            self.scalar(c, 'SELECT 1')
        self.assertProxyServes()
        c2 = self.connect('scram')
        self.assertEqual(self.scalar(c2, 'SELECT current_user'), 'scram_user')


@proxy_only
class TestMisbehavingUpstream(ProxyTestCase):
    """Upstreams that are not PostgreSQL, or break mid-login: the client gets a FATAL error
    in bounded time, other clients are not held up, and ddlguard survives."""
    settings = {'server_connect_timeout': '2', 'server_tls_sslmode': 'prefer'}
    BEHAVIOURS = {
        'ssl_stall': ssl_yes_then_stall,
        'garbage': garbage_reply,
        'huge': huge_length_reply,
        'closes': close_at_once,
        'fatal': own_fatal,
    }

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fakes = {name: FakeServer(fn) for name, fn in cls.BEHAVIOURS.items()}
        cls.databases = {name: f'host=127.0.0.1 port={f.port} dbname=x'
                         for name, f in cls.fakes.items()}
        cls.databases['ssl_stall'] += ' server_tls_sslmode=require'
        cls.databases['appdb'] = 'host={pg_host} port={pg_port} dbname=appdb'

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            for f in cls.fakes.values():
                f.close()

    def login_fails(self, db):
        t0 = time.monotonic()
        with wire.Conn(self.proxy.host, self.proxy.port, timeout=20) as c:
            try:
                c.login('trust_user', db)
                self.fail(f'logged in through a fake upstream ({db})')
            except wire.LoginError as e:
                f = e.fields
            self.assertTrue(c.wait_closed(5))
        self.assertLess(time.monotonic() - t0, 10, 'no answer within server_connect_timeout')
        self.assertEqual(f.get('S'), 'FATAL', f)
        return f

    def test_upstream_stalls_in_tls_handshake(self):
        done = []
        t = threading.Thread(target=lambda: done.append(self.login_fails('ssl_stall')))
        t.start()
        time.sleep(0.3)
        c = self.connect(db='appdb')           # not held up by the stalled handshake
        t0 = time.monotonic()
        self.assertEqual(self.scalar(c, 'SELECT 1'), 1)
        self.assertLess(time.monotonic() - t0, 1.5)
        t.join(20)
        self.assertTrue(done)
        self.assertTrue(done[0]['C'].startswith('08'), done[0])

    def test_upstream_sends_garbage(self):
        f = self.login_fails('garbage')
        self.assertTrue(f['C'].startswith('08'), f)

    def test_upstream_sends_huge_length(self):
        f = self.login_fails('huge')
        self.assertTrue(f['C'].startswith('08'), f)
        self.assertLess(self.proxy.rss_kb(), 1024 * 1024, 'ddlguard allocated for the bogus length')

    def test_upstream_closes_at_once(self):
        f = self.login_fails('closes')
        self.assertTrue(f['C'].startswith('08'), f)

    def test_upstream_fatal_is_forwarded(self):
        f = self.login_fails('fatal')
        self.assertEqual((f['C'], f['M']), ('53300', 'sorry, too many clients already'))

    def tearDown(self):
        super().tearDown()
        self.assertProxyServes()

"""Bad input over raw sockets. Each case must get the right SQLSTATE (or, where any answer
would do, a plain close), and afterwards the proxy must still serve a normal client (checked in
tearDown)."""

import os
import resource
import socket
import struct
import time

import psycopg2

import wire
from harness import DIRECT, ProxyTestCase, APPDB, proxy_only, wait_for


class BadInputTestCase(ProxyTestCase):
    def tearDown(self):
        super().tearDown()           # ddlguard still alive, no sanitizer report
        self.assertProxyServes()

    def raw(self, timeout=10):
        c = wire.Conn(self.proxy.host, self.proxy.port, timeout=timeout)
        self.addCleanup(c.close)
        return c

    def logged_in(self, **params):
        c = self.raw()
        c.login('trust_user', APPDB, **params)
        return c

    @staticmethod
    def send(c, data):
        """Sends, ignoring a connection the proxy already closed (its answer is read later)."""
        try:
            c.send(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def assertRejected(self, c, sqlstate='08P01', allow_close=True):
        """The next thing on the connection is a FATAL ErrorResponse with `sqlstate` (or one of
        a tuple of them) followed by a close, or (if allow_close) just a close."""
        try:
            m = c.recv()
        except wire.Closed:
            if allow_close:
                return None
            self.fail(f'connection closed without an ErrorResponse {sqlstate}')
        self.assertEqual(m.kind, b'E', f'expected ErrorResponse {sqlstate}, got {m!r}')
        f = m.fields()
        self.assertIn(f.get('C'), (sqlstate,) if isinstance(sqlstate, str) else sqlstate, f)
        self.assertEqual(f.get('S'), 'FATAL', f)
        self.assertEqual(f.get('V'), 'FATAL', f'no V field: {f}')
        self.assertTrue(f.get('M'), f'no message: {f}')
        self.assertTrue(c.wait_closed(5), 'connection still open after FATAL')
        return f

    def server_sessions(self, app):
        return self.pg.backends(application_name=app)

    def assertServerSessionGone(self, app, timeout=15):
        wait_for(lambda: not self.server_sessions(app), timeout,
                 what=f'the server session {app!r} to end')


class TestMalformedPackets(BadInputTestCase):
    settings = {
        'client_tls_sslmode': 'allow',
        'client_tls_cert_file': '{proxy_cert}',
        'client_tls_key_file': '{proxy_key}',
    }

    # --- before login
    def test_startup_length_below_8(self):
        for length in (0, 4, 7):
            with self.subTest(length=length):
                c = self.raw()
                self.send(c, struct.pack('!i', length) + b'\0' * max(0, length - 4))
                self.assertRejected(c)

    def test_startup_negative_length(self):
        c = self.raw()
        self.send(c, b'\xff\xff\xff\xf0' + struct.pack('!i', wire.PROTO_V3))
        self.assertRejected(c)

    def test_oversized_startup(self):
        # (PostgreSQL itself only logs this and closes; ddlguard answers 08P01)
        for length in (10005, 1 << 20):
            with self.subTest(length=length):
                c = self.raw()
                self.send(c, struct.pack('!ii', length, wire.PROTO_V3) + b'user\0trust_user\0')
                self.assertRejected(c, '08P01', allow_close=DIRECT)

    def test_garbage_instead_of_startup(self):
        for garbage in (b'GET / HTTP/1.1\r\nHost: x\r\n\r\n', b'\xff' * 64,
                        b'\x00\x00\x00\x10\x12\x34\x56\x78' + b'\x00' * 8):
            with self.subTest(garbage=garbage[:16]):
                c = self.raw()
                self.send(c, garbage)
                # the last one is a well-formed packet with an unknown protocol code
                self.assertRejected(c, ('08P01', '0A000'))

    def test_startup_params_not_terminated(self):
        c = self.raw()
        body = b'user\0trust_user\0database\0appdb'          # no final NULs
        self.send(c, struct.pack('!ii', 8 + len(body), wire.PROTO_V3) + body)
        self.assertRejected(c)

    def test_startup_without_user(self):
        c = self.raw()
        self.send(c, wire.startup({'database': APPDB}))
        try:
            m = c.recv()
        except wire.Closed:
            return
        self.assertEqual(m.kind, b'E', m)
        self.assertIn(m.sqlstate, ('28000', '08P01'), m.fields())
        self.assertTrue(c.wait_closed(5))

    def test_protocol_version_2(self):
        c = self.raw()
        body = APPDB.encode().ljust(64, b'\0') + b'trust_user'.ljust(32, b'\0') + b'\0' * 192
        self.send(c, struct.pack('!ii', 8 + len(body), wire.PROTO_V2) + body)
        data = b''
        while True:
            try:
                data += c.recv_byte()
            except wire.Closed:
                break
        self.assertTrue(data.startswith(b'E'), f'no error before close: {data!r}')
        if b'C0A000\0' not in data:
            # PostgreSQL answers a v2 client in v2 format: 'E' and the message text, no SQLSTATE
            self.assertIn(b'unsupported frontend protocol', data,
                          f'neither a v3 ErrorResponse 0A000 nor a v2 error: {data!r}')

    def test_protocol_version_4(self):
        c = self.raw()
        self.send(c, wire.startup({'user': 'trust_user', 'database': APPDB}, version=4 << 16))
        self.assertRejected(c, '0A000', allow_close=True)

    def test_short_cancel_request(self):
        c = self.raw()
        self.send(c, struct.pack('!ii', 12, wire.CANCEL_REQUEST) + b'\0\0\0\1')
        self.assertTrue(c.wait_closed(5))

    @proxy_only
    def test_ssl_request_with_trailing_plaintext(self):
        c = self.raw()
        self.send(c, wire.ssl_request() + wire.startup({'user': 'trust_user', 'database': APPDB}))
        try:
            first = c.recv_byte()
        except wire.Closed:
            return
        self.assertNotEqual(first, b'S', "answered 'S' to an SSLRequest with trailing bytes")
        self.assertEqual(first, b'E', f'unexpected answer {first!r}')
        c.buf = first + c.buf
        self.assertRejected(c, '08P01')

    @proxy_only
    def test_gssenc_request_answered_n(self):
        c = self.raw()
        self.send(c, wire.gssenc_request())
        self.assertEqual(c.recv_byte(), b'N')
        # the client then goes on with a normal startup on the same socket
        c.login('trust_user', APPDB)
        self.assertEqual(c.rows('SELECT 1'), [['1']])

    @proxy_only
    def test_gssenc_then_ssl_then_login(self):
        c = self.raw()
        self.send(c, wire.gssenc_request())
        self.assertEqual(c.recv_byte(), b'N')
        self.send(c, wire.ssl_request())
        self.assertEqual(c.recv_byte(), b'S')
        c.start_tls()
        c.login('trust_user', APPDB)
        self.assertEqual(c.rows('SELECT 2'), [['2']])

    # --- after login
    def test_message_length_below_4(self):
        for length in (0, 3):
            with self.subTest(length=length):
                c = self.logged_in()
                self.send(c, b'Q' + struct.pack('!i', length))
                self.assertRejected(c)

    def test_message_negative_length(self):
        c = self.logged_in()
        self.send(c, b'Q' + b'\xff\xff\xff\xff')
        self.assertRejected(c)

    def test_unknown_message_type(self):
        c = self.logged_in()
        self.send(c, b'@' + struct.pack('!i', 4))
        self.assertRejected(c, '08P01', allow_close=True)

    def test_oversized_small_messages(self):
        for kind in (b'S', b'H', b'D', b'E', b'C', b'X'):
            with self.subTest(kind=kind):
                c = self.logged_in()
                self.send(c, kind + struct.pack('!i', 20000) + b'\0' * 100)
                self.assertRejected(c)

    def test_startup_packet_after_login(self):
        c = self.logged_in()
        self.send(c, wire.startup({'user': 'trust_user', 'database': APPDB}))
        self.assertRejected(c)

    def test_terminate_closes_server_session(self):
        c = self.logged_in(application_name='bad-terminate')
        self.assertTrue(self.server_sessions('bad-terminate'))
        self.send(c, wire.terminate())
        self.assertTrue(c.wait_closed(5), 'not closed after Terminate')
        self.assertServerSessionGone('bad-terminate')

    # --- misbehaving clients
    def test_terminate_during_authentication(self):
        c = self.raw()
        c.send(wire.startup({'user': 'scram_user', 'database': APPDB}))
        self.assertEqual(c.recv().kind, b'R')
        self.send(c, wire.terminate())
        self.assertTrue(c.wait_closed(5))

    def test_garbage_during_authentication(self):
        c = self.raw()
        c.send(wire.startup({'user': 'scram_user', 'database': APPDB}))
        self.assertEqual(c.recv().kind, b'R')
        self.send(c, b'p' + struct.pack('!i', 2) + b'\xff' * 30)
        self.assertRejected(c, ('08P01', '28P01'))

    def test_stalled_client_does_not_block_others(self):
        sql = "SELECT 'finished after stall'"
        msg = wire.query(sql)
        stalled = self.logged_in()
        stalled.send(msg[:9])                        # header and 4 bytes of the query, then nothing
        half_startup = self.raw()
        half_startup.send(struct.pack('!i', 40))     # startup length, then nothing
        c = psycopg2.connect(self.conninfo())
        try:
            with c.cursor() as cur:
                for i in range(20):
                    t0 = time.monotonic()
                    cur.execute('SELECT %s', (i,))
                    self.assertEqual(cur.fetchone()[0], i)
                    self.assertLess(time.monotonic() - t0, 2)
        finally:
            c.close()
        stalled.send(msg[9:])                        # the stalled client finishes its message
        self.assertEqual([m.kind for m in stalled.recv_ready()], [b'T', b'D', b'C', b'Z'])

    @proxy_only
    def test_client_stalled_in_tls_handshake_does_not_block_others(self):
        stalled = self.raw()
        stalled.send(wire.ssl_request())
        self.assertEqual(stalled.recv_byte(), b'S')
        stalled.send(b'\x16\x03\x01\x02\x00\x01')     # the start of a ClientHello, then nothing
        for sslmode in ('require', 'disable'):
            c = psycopg2.connect(self.conninfo(sslmode=sslmode, connect_timeout=5))
            try:
                t0 = time.monotonic()
                self.assertEqual(self.scalar(c, 'SELECT 1'), 1)
                self.assertLess(time.monotonic() - t0, 2)
            finally:
                c.close()

    def test_disconnect_mid_copy_in(self):
        table = f'badcopy_{os.getpid()}'
        self.pg.query(f'CREATE TABLE {table} (id int, v text); GRANT ALL ON {table} TO PUBLIC')
        self.addCleanup(self.pg.query, f'DROP TABLE IF EXISTS {table}')
        c = self.logged_in(application_name='bad-midcopy')
        c.send(wire.query(f'COPY {table} FROM STDIN'))
        self.assertEqual(c.recv().kind, b'G')
        chunk = b''.join(b'%d\tsome text\n' % i for i in range(10000))
        for _ in range(40):
            c.send(wire.copy_data(chunk))
        c.send(wire.copy_data(b'123\tunfinished li'))
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        c.close()                                    # RST, mid-stream
        self.assertServerSessionGone('bad-midcopy')
        self.assertEqual(self.pg.query(f'SELECT count(*) FROM {table}'), [(0,)])

    def test_disconnect_mid_result(self):
        c = self.logged_in(application_name='bad-midresult')
        c.send(wire.query("SELECT repeat('x', 1000) FROM generate_series(1, 1000000)"))
        got = 0
        while got < 2 * 1024 * 1024:
            got += len(c.recv().body)
        c.close()
        self.assertServerSessionGone('bad-midresult')

    def test_disconnect_mid_large_message(self):
        c = self.logged_in(application_name='bad-midmessage')
        c.send(b'Q' + struct.pack('!i', 20 * 1024 * 1024) + b'SELECT \'' + b'x' * (1 << 20))
        time.sleep(0.3)
        c.close()
        self.assertServerSessionGone('bad-midmessage')

    def test_disconnect_mid_copy_out(self):
        c = self.logged_in(application_name='bad-midcopyout')
        c.send(wire.query("COPY (SELECT repeat('c', 500) FROM generate_series(1, 2000000)) TO STDOUT"))
        self.assertEqual(c.recv().kind, b'H')
        for _ in range(2000):
            c.recv()
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        c.close()
        self.assertServerSessionGone('bad-midcopyout')

    @proxy_only
    def test_1000_connections_opened_and_dropped(self):
        self.assertProxyServes()
        time.sleep(0.5)
        fds_before, rss_before = self.proxy.fd_count(), self.proxy.rss_kb()
        socks = []
        try:
            for i in range(1000):
                s = socket.create_connection((self.proxy.host, self.proxy.port), timeout=10)
                socks.append(s)
                if i % 2:
                    s.send(struct.pack('!ii', 60, wire.PROTO_V3) + b'user\0')   # partial startup
            opened = wait_for(lambda: self.proxy.fd_count() >= fds_before + 900, 20,
                              what='ddlguard to accept the connections')
            self.assertTrue(opened)
        finally:
            for s in socks:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
                s.close()
        wait_for(lambda: self.proxy.fd_count() <= fds_before, 20,
                 what=f'ddlguard fd count back to {fds_before} '
                      f'(now {self.proxy.fd_count()})')
        self.assertProxyServes()
        grown_mb = (self.proxy.rss_kb() - rss_before) / 1024
        self.assertLess(grown_mb, 64, f'ddlguard RSS grew by {grown_mb:.0f} MB')


@proxy_only
class TestMaxPacketSize(BadInputTestCase):
    settings = {'max_packet_size': str(1 << 20)}

    def test_message_over_max_packet_size(self):
        c = self.logged_in()
        self.send(c, b'Q' + struct.pack('!i', 2 << 20) + b'SELECT \'' + b'x' * 65536)
        self.assertRejected(c, '08P01', allow_close=False)

    def test_parse_over_max_packet_size(self):
        c = self.logged_in()
        self.send(c, b'P' + struct.pack('!i', (1 << 20) + 100) + b'\0SELECT ' + b' ' * 1000)
        self.assertRejected(c, '08P01', allow_close=False)

    def test_copy_data_over_max_packet_size(self):
        c = self.logged_in()
        c.rows('CREATE TEMP TABLE t (v text)')
        c.send(wire.query('COPY t FROM STDIN'))
        self.assertEqual(c.recv().kind, b'G')
        self.send(c, b'd' + struct.pack('!i', 2 << 20) + b'x' * 65536)
        self.assertRejected(c, '08P01', allow_close=False)

    def test_copy_stream_larger_than_max_packet_size_works(self):
        """The cap is per message: a 5 MB COPY in 64 kB messages is fine."""
        c = self.logged_in()
        c.rows('CREATE TEMP TABLE t (v text)')
        c.send(wire.query('COPY t FROM STDIN'))
        self.assertEqual(c.recv().kind, b'G')
        line = b'y' * 1023 + b'\n'
        for _ in range(80):
            c.send(wire.copy_data(line * 64))
        c.send(wire.copy_done())
        msgs = c.recv_ready()
        self.assertIsNone(wire.first_error(msgs), msgs)
        self.assertEqual(c.rows('SELECT count(*), sum(length(v)) FROM t'), [['5120', str(5120 * 1023)]])

    def test_message_under_max_packet_size_works(self):
        c = self.logged_in()
        value = 'y' * 900_000
        self.assertEqual(c.rows(f"SELECT length('{value}')"), [['900000']])


@proxy_only
class TestLoginTimeout(BadInputTestCase):
    settings = {
        'client_login_timeout': '2',
        'client_tls_sslmode': 'allow',
        'client_tls_cert_file': '{proxy_cert}',
        'client_tls_key_file': '{proxy_key}',
    }

    def test_client_stuck_in_tls_handshake_is_disconnected(self):
        c = self.raw(timeout=15)
        c.send(wire.ssl_request())
        self.assertEqual(c.recv_byte(), b'S')
        t0 = time.monotonic()
        self.assertTrue(c.wait_closed(12), 'a client stuck before its ClientHello was never dropped')
        self.assertGreater(time.monotonic() - t0, 1.0)

    def test_silent_client_is_disconnected(self):
        c = self.raw(timeout=15)
        t0 = time.monotonic()
        self.assertTrue(c.wait_closed(12), 'a silent client was never disconnected')
        self.assertGreater(time.monotonic() - t0, 1.5)

    def test_client_stuck_in_auth_is_disconnected(self):
        c = self.raw(timeout=15)
        c.send(wire.startup({'user': 'scram_user', 'database': APPDB}))
        m = c.recv()
        self.assertEqual(m.kind, b'R')              # SASL request; we never answer
        t0 = time.monotonic()
        self.assertTrue(c.wait_closed(12), 'a client stuck in authentication was never disconnected')
        self.assertGreater(time.monotonic() - t0, 1.0)

    def test_logged_in_idle_client_is_not_disconnected(self):
        c = self.logged_in()
        time.sleep(3)
        self.assertEqual(c.rows('SELECT 1'), [['1']])


@proxy_only
class TestFdExhaustion(BadInputTestCase):
    class_proxy = False

    def test_out_of_file_descriptors(self):
        """With RLIMIT_NOFILE at 64, 100 clients: ddlguard must neither crash nor spin on
        accept(), and must serve again once they are gone."""
        def low_fd_limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        p = self.start_proxy(preexec_fn=low_fd_limit)
        self.proxy_for_teardown = p
        socks = []
        try:
            for _ in range(100):
                s = socket.socket()
                s.settimeout(5)
                try:
                    s.connect((p.host, p.port))
                    s.send(struct.pack('!i', 60))            # and a partial startup
                except OSError:
                    pass
                socks.append(s)
            time.sleep(1)
            cpu0 = self.cpu_seconds(p.pid)
            time.sleep(3)
            busy = (self.cpu_seconds(p.pid) - cpu0) / 3
            self.assertLess(busy, 0.5, f'ddlguard used {busy:.0%} of a core while out of fds')
            self.assertTrue(p.alive(), 'ddlguard died when it ran out of file descriptors')
        finally:
            for s in socks:
                s.close()
        wait_for(lambda: p.fd_count() < 30, 20, what='ddlguard to release its descriptors')

    @staticmethod
    def cpu_seconds(pid):
        with open(f'/proc/{pid}/stat') as f:
            fields = f.read().rsplit(')', 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')

    def assertProxyServes(self, proxy=None):
        super().assertProxyServes(proxy or self.proxy_for_teardown)

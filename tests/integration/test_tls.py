"""TLS on the client leg, the server leg, and both; certificate verification of the server."""

import hashlib
import struct
import threading
import time

import psycopg2
import psycopg2.errors

import wire
from harness import ProxyTestCase, USERS, APPDB, proxy_only

CLIENT_TLS = {
    'client_tls_sslmode': 'require',
    'client_tls_cert_file': '{proxy_cert}',
    'client_tls_key_file': '{proxy_key}',
}
SSL_OF_BACKEND = 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'


class TLSMixin:
    client_sslmode = 'disable'      # what a normal client of this class's ddlguard uses

    def assertProxyServes(self, proxy=None):
        c = psycopg2.connect(self.conninfo(proxy=proxy, sslmode=self.client_sslmode))
        try:
            self.assertEqual(self.scalar(c, 'SELECT 42'), 42)
        finally:
            c.close()

    def ssl_conn(self, user='scram', **kw):
        kw.setdefault('sslmode', 'require')
        return self.connect(user, **kw)

    def check_cancel(self):
        c = self.ssl_conn('trust')
        timer = threading.Timer(0.5, c.cancel)
        timer.start()
        t0 = time.monotonic()
        with self.assertRaises(psycopg2.errors.QueryCanceled):
            with c.cursor() as cur:
                cur.execute('SELECT pg_sleep(30)')
        timer.join()
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(self.scalar(c, 'SELECT 7'), 7)

    def assertServerLegTLS(self, conn, expected):
        self.assertIs(self.scalar(conn, SSL_OF_BACKEND), expected,
                      'server leg TLS' if expected else 'server leg plaintext')


@proxy_only
class TestClientLegOnly(TLSMixin, ProxyTestCase):
    settings = dict(CLIENT_TLS, server_tls_sslmode='disable')
    client_sslmode = 'require'

    def test_psql_sslmode_require_scram(self):
        p = self.psql(self.conninfo('scram', sslmode='require'), '-c',
                      f"SELECT current_user, ({SSL_OF_BACKEND})")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), 'scram_user|f')

    def test_client_verifies_proxy_certificate(self):
        """verify-full against ddlguard's certificate (SAN 127.0.0.1) with the test CA."""
        c = self.ssl_conn('scram', sslmode='verify-full', sslrootcert=self.pg.certs.ca)
        self.assertTrue(c.info.ssl_in_use)
        self.assertServerLegTLS(c, False)

    def test_client_rejects_proxy_certificate_from_other_ca(self):
        with self.assertRaises(psycopg2.OperationalError) as cm:
            self.ssl_conn('scram', sslmode='verify-ca', sslrootcert=self.pg.certs.wrong_ca)
        self.assertIn('certificate verify failed', str(cm.exception))

    def test_every_auth_method_over_tls_client_leg(self):
        for method in ('trust', 'password', 'md5', 'scram'):
            with self.subTest(method=method):
                c = self.ssl_conn(method)
                self.assertTrue(c.info.ssl_in_use)
                self.assertEqual(self.scalar(c, 'SELECT current_user'), USERS[method][0])

    def test_plain_client_rejected_28000(self):
        with wire.Conn(self.proxy.host, self.proxy.port) as c:
            with self.assertRaises(wire.LoginError) as cm:
                c.login('trust_user', APPDB)
            self.assertEqual(cm.exception.sqlstate, '28000', cm.exception.fields)
            self.assertEqual(cm.exception.fields.get('S'), 'FATAL')
            self.assertTrue(c.wait_closed(5))
        p = self.psql(self.conninfo('trust', sslmode='disable'), '-c', 'SELECT 1')
        self.assertEqual(p.returncode, 2)

    def test_cancel_with_tls_client_leg(self):
        """libpq 15 sends CancelRequest in plaintext even when the session is TLS: it must work
        with client_tls_sslmode=require."""
        self.check_cancel()

    def test_ssl_request_with_trailing_plaintext_is_closed(self):
        """SSLRequest and the start of a StartupMessage in one packet: bytes that arrived before
        the handshake may be injected, so the proxy must close without answering 'S'."""
        with wire.Conn(self.proxy.host, self.proxy.port) as c:
            c.send(wire.ssl_request() + wire.startup({'user': 'trust_user', 'database': APPDB}))
            try:
                first = c.recv_byte()
            except wire.Closed:
                return
            self.assertNotEqual(first, b'S', "answered 'S' to an SSLRequest with trailing bytes")
            if first == b'E':
                c.buf = first + c.buf
                m = c.recv()
                self.assertEqual(m.sqlstate, '08P01', m)
            self.assertTrue(c.wait_closed(5), 'connection still open')
        self.assertProxyServes()

    def test_ssl_request_twice_inside_tls_is_rejected(self):
        with wire.Conn(self.proxy.host, self.proxy.port) as c:
            c.send(wire.ssl_request())
            self.assertEqual(c.recv_byte(), b'S')
            c.start_tls()
            c.send(wire.ssl_request())
            try:
                b = c.recv_byte()
                self.assertNotIn(b, (b'S', b'N'), 'a second SSLRequest inside TLS was answered')
            except wire.Closed:
                pass
        self.assertProxyServes()


@proxy_only
class TestServerLegOnly(TLSMixin, ProxyTestCase):
    settings = {'server_tls_sslmode': 'verify-full', 'server_tls_ca_file': '{ca}'}

    def test_every_auth_method_server_leg_tls(self):
        for method in ('trust', 'password', 'md5', 'scram', 'tls'):
            with self.subTest(method=method):
                c = self.connect(method)
                self.assertFalse(c.info.ssl_in_use)
                self.assertEqual(self.scalar(c, 'SELECT current_user'), USERS[method][0])
                self.assertServerLegTLS(c, True)

    def test_psql_default_sslmode(self):
        """psql's default sslmode=prefer: ddlguard answers 'N' and the session goes on in
        plaintext on the client leg, TLS on the server leg."""
        p = self.psql(self.conninfo('scram', sslmode='prefer'), '-c', SSL_OF_BACKEND)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), 't')

    def test_client_sslmode_require_refused(self):
        with wire.Conn(self.proxy.host, self.proxy.port) as c:
            c.send(wire.ssl_request())
            self.assertEqual(c.recv_byte(), b'N')
            # and the same socket continues in plaintext
            c.login('trust_user', APPDB)
            self.assertEqual(c.rows('SELECT 1'), [['1']])
        with self.assertRaises(psycopg2.OperationalError):
            self.ssl_conn('trust')


@proxy_only
class TestBothLegs(TLSMixin, ProxyTestCase):
    settings = dict(CLIENT_TLS, server_tls_sslmode='verify-full', server_tls_ca_file='{ca}')
    client_sslmode = 'require'

    def test_psql_scram_default_channel_binding(self):
        p = self.psql(self.conninfo('scram', sslmode='require'), '-c',
                      f'SELECT current_user, ({SSL_OF_BACKEND})')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), 'scram_user|t')

    def test_psycopg2_every_auth_method(self):
        for method in ('trust', 'password', 'md5', 'scram', 'tls'):
            with self.subTest(method=method):
                c = self.ssl_conn(method)
                self.assertTrue(c.info.ssl_in_use)
                self.assertEqual(self.scalar(c, 'SELECT current_user'), USERS[method][0])
                self.assertServerLegTLS(c, True)

    def test_auth_requests_seen_by_client(self):
        """Over TLS on both legs ddlguard asks a SCRAM user for the cleartext password (it does
        SCRAM upstream itself); the other methods are relayed as the server asks them."""
        expected = {'trust': [0], 'password': [3, 0], 'md5': [5, 0], 'scram': [3, 0]}
        for method, codes in expected.items():
            with self.subTest(method=method):
                role, pw = USERS[method]
                with wire.Conn(self.proxy.host, self.proxy.port) as c:
                    c.send(wire.ssl_request())
                    self.assertEqual(c.recv_byte(), b'S')
                    c.start_tls(cafile=self.pg.certs.ca)
                    msgs = c.login(role, APPDB, password=pw)
                    self.assertEqual([m.int32() for m in msgs if m.kind == b'R'], codes)
                    self.assertEqual(c.rows(SSL_OF_BACKEND), [['t']])

    def test_scram_password_needing_saslprep(self):
        """ddlguard does SCRAM upstream with the cleartext password it was given: it must apply
        SASLprep to it as libpq does (PostgreSQL stored the verifier of the prepared form)."""
        p = self.psql(self.conninfo('scram_unicode', sslmode='require'), '-c', 'SELECT current_user')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), USERS['scram_unicode'][0])

    def test_scram_wrong_password_28P01(self):
        role, _ = USERS['scram']
        with wire.Conn(self.proxy.host, self.proxy.port) as c:
            c.send(wire.ssl_request())
            self.assertEqual(c.recv_byte(), b'S')
            c.start_tls()
            with self.assertRaises(wire.LoginError) as cm:
                c.login(role, APPDB, password='wrong')
            self.assertEqual(cm.exception.sqlstate, '28P01', cm.exception.fields)
            self.assertTrue(c.wait_closed(5))

    def tls_login_error(self, role, password):
        with wire.Conn(self.proxy.host, self.proxy.port) as c:
            c.send(wire.ssl_request())
            self.assertEqual(c.recv_byte(), b'S')
            c.start_tls()
            c.send(wire.startup({'user': role, 'database': APPDB}))
            m = c.recv()
            self.assertEqual((m.kind, m.int32()), (b'R', 3), m)
            try:
                c.send(wire.msg(b'p', password))
                m = c.recv()
            except (OSError, wire.Closed):      # closed without a word: acceptable here
                return None
            self.assertEqual(m.kind, b'E', m)
            self.assertEqual(m.fields().get('S'), 'FATAL', m.fields())
            self.assertTrue(c.wait_closed(5))
            return m.sqlstate

    def test_scram_empty_password(self):
        self.assertEqual(self.tls_login_error('scram_user', b'\0'), '28P01')

    def test_scram_oversized_password(self):
        self.assertIn(self.tls_login_error('scram_user', b'x' * 100000 + b'\0'),
                      (None, '28P01', '08P01'))
        self.assertProxyServes()

    def test_scram_sasl_message_instead_of_password(self):
        data = b'n,,n=,r=abcdefghijklmnop'
        sasl = wire.cstr('SCRAM-SHA-256') + struct.pack('!i', len(data)) + data
        self.assertIn(self.tls_login_error('scram_user', sasl), (None, '28P01', '08P01'))
        self.assertProxyServes()

    def test_scram_wrong_password(self):
        p = self.psql(self.conninfo('scram', sslmode='require', password='wrong'), '-c', 'SELECT 1')
        self.assertEqual(p.returncode, 2)
        self.assertIn('password authentication failed', p.stderr)

    def test_cancel_both_legs_tls(self):
        self.check_cancel()

    def test_cancel_request_over_tls(self):
        """libpq 17's PQcancelCreate sends CancelRequest after an SSLRequest, like a login."""
        with wire.Conn(self.proxy.host, self.proxy.port, timeout=20) as c:
            c.send(wire.ssl_request())
            self.assertEqual(c.recv_byte(), b'S')
            c.start_tls()
            c.login('trust_user', APPDB)
            c.send(wire.query('SELECT pg_sleep(30)'))
            time.sleep(0.5)
            t0 = time.monotonic()
            with wire.Conn(self.proxy.host, self.proxy.port) as k:
                k.send(wire.ssl_request())
                self.assertEqual(k.recv_byte(), b'S')
                k.start_tls()
                k.send(wire.cancel_request(*c.key))
                self.assertTrue(k.wait_closed(10), 'cancel connection not closed')
            err = wire.first_error(c.recv_ready())
            self.assertIsNotNone(err, 'the query was not cancelled')
            self.assertEqual(err.sqlstate, '57014', err.fields())
            self.assertLess(time.monotonic() - t0, 5)

    def test_scram_channel_binding_disabled_client(self):
        c = self.ssl_conn('scram', channel_binding='disable')
        self.assertServerLegTLS(c, True)

    def test_large_result_over_tls_both_legs(self):
        c = self.ssl_conn('trust')
        with c.cursor() as cur:
            cur.execute("SELECT md5(string_agg(repeat(i::text, 50), ',' ORDER BY i)), "
                        "count(*) FROM generate_series(1, 100000) i")
            expected, n = cur.fetchone()
            cur.execute("SELECT repeat(i::text, 50) FROM generate_series(1, 100000) i ORDER BY i")
            rows = [r[0] for r in cur.fetchall()]
        self.assertEqual(len(rows), n)
        self.assertEqual(hashlib.md5(','.join(rows).encode()).hexdigest(), expected)


@proxy_only
class TestServerVerification(TLSMixin, ProxyTestCase):
    """Routes that verify the server differently; PostgreSQL also listens on 127.0.0.2, which
    its certificate does not name."""
    settings = {'server_tls_sslmode': 'disable'}
    databases = {
        'wrongca': 'host={pg_host} port={pg_port} dbname=appdb server_tls_sslmode=verify-full '
                   'server_tls_ca_file={wrong_ca}',
        'badname': 'host=127.0.0.2 port={pg_port} dbname=appdb server_tls_sslmode=verify-full '
                   'server_tls_ca_file={ca}',
        'caonly': 'host=127.0.0.2 port={pg_port} dbname=appdb server_tls_sslmode=verify-ca '
                  'server_tls_ca_file={ca}',
        'required': 'host={pg_host} port={pg_port} dbname=appdb server_tls_sslmode=require',
        'full': 'host=localhost port={pg_port} dbname=appdb server_tls_sslmode=verify-full '
                'server_tls_ca_file={ca}',
        '*': 'host={pg_host} port={pg_port}',
    }

    def assertRouteFails(self, db):
        with wire.Conn(self.proxy.host, self.proxy.port) as c:
            with self.assertRaises(wire.LoginError) as cm:
                c.login('trust_user', db)
        f = cm.exception.fields
        self.assertEqual(f.get('S'), 'FATAL', f)
        self.assertTrue(f.get('C', '').startswith('08'), f'expected a class 08 SQLSTATE: {f}')
        return f

    def test_verify_full_wrong_ca_fails_clearly(self):
        f = self.assertRouteFails('wrongca')
        text = (f.get('M', '') + ' ' + f.get('D', '') + ' ' + self.proxy.log_text()).lower()
        self.assertIn('certificate', text, 'neither the client error nor the log says why')

    def test_verify_full_hostname_mismatch_fails(self):
        self.assertRouteFails('badname')

    def test_verify_ca_ignores_hostname(self):
        c = self.connect('trust', db='caonly')
        self.assertServerLegTLS(c, True)

    def test_verify_full_by_dns_name(self):
        c = self.connect('trust', db='full')
        self.assertServerLegTLS(c, True)

    def test_require_without_ca(self):
        c = self.connect('scram', db='required')
        self.assertServerLegTLS(c, True)

    def test_route_overrides_global_default(self):
        c = self.connect('trust', db='appdb')     # via '*', global server_tls_sslmode=disable
        self.assertServerLegTLS(c, False)

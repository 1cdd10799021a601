"""Authentication relayed through ddlguard: trust, cleartext, md5 and SCRAM-SHA-256, with psql,
psycopg2 and a raw client; wrong passwords reach the client as the server's 28P01."""

import psycopg2

import wire
from harness import ProxyTestCase, USERS, APPDB, proxy_only


class AuthMixin:
    """Every authentication method, on a plaintext client leg."""

    def check_psql(self, method):
        p = self.psql(self.conninfo(method), '-c', 'SELECT current_user')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), USERS[method][0])

    def check_psycopg2(self, method):
        c = self.connect(method)
        self.assertEqual(self.scalar(c, 'SELECT current_user'), USERS[method][0])
        self.assertEqual(self.scalar(c, 'SELECT count(*) FROM generate_series(1, 1000)'), 1000)

    def check_wrong_password(self, method):
        role, _ = USERS[method]
        with wire.Conn(self.proxy.host, self.proxy.port) as c:
            with self.assertRaises(wire.LoginError) as cm:
                c.login(role, APPDB, password='not-the-password')
            self.assertEqual(cm.exception.sqlstate, '28P01', cm.exception.fields)
            self.assertEqual(cm.exception.fields.get('S'), 'FATAL')
            self.assertIn('password authentication failed', cm.exception.fields.get('M', ''))
            self.assertTrue(c.wait_closed(5), 'connection not closed after FATAL')
        with self.assertRaises(psycopg2.OperationalError) as cm:
            self.connect(method, password='not-the-password')
        self.assertIn('password authentication failed', str(cm.exception))
        p = self.psql(self.conninfo(method, password='not-the-password'), '-c', 'SELECT 1')
        self.assertEqual(p.returncode, 2)
        self.assertIn('password authentication failed', p.stderr)

    def test_trust_psql(self):
        self.check_psql('trust')

    def test_trust_psycopg2(self):
        self.check_psycopg2('trust')

    def test_cleartext_psql(self):
        self.check_psql('password')

    def test_cleartext_psycopg2(self):
        self.check_psycopg2('password')

    def test_cleartext_wrong_password(self):
        self.check_wrong_password('password')

    def test_md5_psql(self):
        self.check_psql('md5')

    def test_md5_psycopg2(self):
        self.check_psycopg2('md5')

    def test_md5_wrong_password(self):
        self.check_wrong_password('md5')

    def test_scram_psql(self):
        self.check_psql('scram')

    def test_scram_psycopg2(self):
        self.check_psycopg2('scram')

    def test_scram_raw_client(self):
        """A SCRAM exchange driven by hand: SASL, SASLContinue, SASLFinal, Ok arrive in order."""
        role, pw = USERS['scram']
        with wire.Conn(self.proxy.host, self.proxy.port) as c:
            msgs = c.login(role, APPDB, password=pw)
            auth = [m.int32() for m in msgs if m.kind == b'R']
            self.assertEqual(auth, [10, 12, 0])
            self.assertIsNotNone(c.key, 'no BackendKeyData')
            self.assertEqual(c.rows('SELECT current_user'), [[role]])

    def test_scram_wrong_password(self):
        self.check_wrong_password('scram')

    def test_scram_not_offered_plus_on_plain_client_leg(self):
        """A plaintext client must never be offered SCRAM-SHA-256-PLUS (libpq aborts on it)."""
        role, pw = USERS['scram']
        with wire.Conn(self.proxy.host, self.proxy.port) as c:
            c.send(wire.startup({'user': role, 'database': APPDB}))
            m = c.recv()
            self.assertEqual((m.kind, m.int32()), (b'R', 10), m)
            mechs = [x for x in m.body[4:].split(b'\0') if x]
            self.assertIn(b'SCRAM-SHA-256', mechs)
            self.assertNotIn(b'SCRAM-SHA-256-PLUS', mechs)

    def test_scram_password_needing_saslprep(self):
        self.check_psycopg2('scram_unicode')
        self.check_psql('scram_unicode')

    def test_role_name_needing_quotes(self):
        self.check_psycopg2('unicode_name')
        self.check_psql('unicode_name')

    def test_unknown_role_gets_server_error(self):
        with wire.Conn(self.proxy.host, self.proxy.port) as c:
            with self.assertRaises(wire.LoginError) as cm:
                c.login('no_such_role', APPDB)
            # pg_hba has no line for this role: the server's own rejection is forwarded
            self.assertEqual(cm.exception.sqlstate, '28000', cm.exception.fields)
            self.assertIn('no_such_role', cm.exception.fields.get('M', ''))


class TestAuthServerLegTLS(AuthMixin, ProxyTestCase):
    """Default server_tls_sslmode (prefer): the server leg is TLS, so the server offers
    SCRAM-SHA-256-PLUS to ddlguard."""

    @proxy_only
    def test_server_leg_is_tls(self):
        c = self.connect('scram')
        self.assertIs(self.scalar(c, 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'), True)

    @proxy_only
    def test_tls_only_role_reachable(self):
        """tls_user exists only in a hostssl line: it logs in because the server leg is TLS."""
        self.check_psycopg2('tls')


class TestAuthServerLegPlain(AuthMixin, ProxyTestCase):
    settings = {'server_tls_sslmode': 'disable'}

    def test_server_leg_is_plain(self):
        c = self.connect('scram')
        self.assertIs(self.scalar(c, 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'), False)

    def test_tls_only_role_rejected_by_server(self):
        """The server's login error (no hostnossl line for tls_user) reaches the client as is."""
        role, pw = USERS['tls']
        with wire.Conn(self.proxy.host, self.proxy.port) as c:
            with self.assertRaises(wire.LoginError) as cm:
                c.login(role, APPDB, password=pw)
            self.assertEqual(cm.exception.sqlstate, '28000', cm.exception.fields)
            self.assertIn('no encryption', cm.exception.fields.get('M', ''))

"""The command line: --version, --help, config errors, zero-config mode, `ddlguard run`, and
signals (SIGTERM, SIGINT, SIGHUP)."""

import os
import signal
import subprocess
import threading
import time

import psycopg2

import wire
from harness import (ProxyTestCase, APPDB, ddlguard_bin, free_port, port_open, proxy_only,
                     subdir, wait_for)


@proxy_only
class CliTestCase(ProxyTestCase):
    class_proxy = False

    def ddlguard(self, *args, env=None, timeout=60):
        e = dict(os.environ, ASAN_OPTIONS='detect_leaks=1:abort_on_error=0')
        for k in ('PGHOST', 'PGPORT', 'PGUSER', 'PGDATABASE', 'DATABASE_URL', 'PGSSLMODE'):
            e.pop(k, None)
        e.update(env or {})
        p = subprocess.run([ddlguard_bin()] + list(args), capture_output=True, text=True,
                           timeout=timeout, env=e, stdin=subprocess.DEVNULL)
        for pat in ('ERROR: AddressSanitizer', 'runtime error:', 'ERROR: LeakSanitizer'):
            self.assertNotIn(pat, p.stderr, p.stderr)
        return p

    def upstream_url(self, sslmode='disable', user='trust_user'):
        return f'postgres://{user}@{self.pg.host}:{self.pg.port}/{APPDB}?sslmode={sslmode}'

    def write_config(self, text):
        path = os.path.join(subdir('proxy'), f'{self._testMethodName}.ini')
        with open(path, 'w') as f:
            f.write(text.format(pg_port=self.pg.port, port=free_port()))
        return path


class TestCommandLine(CliTestCase):
    def test_version(self):
        p = self.ddlguard('--version')
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout + p.stderr
        self.assertIn('ddlguard', out.lower())
        self.assertRegex(out, r'\d+\.\d+')

    def test_help(self):
        p = self.ddlguard('--help')
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout + p.stderr
        for word in ('--upstream', '--listen', 'run', '-c'):
            self.assertIn(word, out)

    def test_unknown_option(self):
        p = self.ddlguard('--no-such-option', timeout=20)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn('no-such-option', p.stderr)

    def test_missing_config_file(self):
        p = self.ddlguard('-c', '/nonexistent/ddlguard.ini', timeout=20)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn('/nonexistent/ddlguard.ini', p.stderr)

    def check_bad_config(self, text, *mentions):
        path = self.write_config(text)
        p = self.ddlguard('-c', path, timeout=20)
        self.assertNotEqual(p.returncode, 0, f'accepted a bad config:\n{text}')
        for m in mentions:
            self.assertIn(m, p.stderr, f'the error does not mention {m!r}')
        return p

    def test_bad_config_unknown_key(self):
        self.check_bad_config('[ddlguard]\nlisten_port = {port}\nno_such_setting = 1\n'
                              '[databases]\n* = host=127.0.0.1 port={pg_port}\n', 'no_such_setting')

    def test_bad_config_line_without_equals(self):
        p = self.check_bad_config('[ddlguard]\nlisten_port = {port}\nthis line is wrong\n'
                                  '[databases]\n* = host=127.0.0.1 port={pg_port}\n')
        self.assertRegex(p.stderr, r'(line 3|:3\b)', 'the error does not give the line number')

    def test_bad_config_bad_number(self):
        self.check_bad_config('[ddlguard]\nlisten_port = notaport\n'
                              '[databases]\n* = host=127.0.0.1 port={pg_port}\n', 'listen_port')

    def test_bad_config_bad_enum(self):
        self.check_bad_config('[ddlguard]\nlisten_port = {port}\nclient_tls_sslmode = sometimes\n'
                              '[databases]\n* = host=127.0.0.1 port={pg_port}\n', 'client_tls_sslmode')

    def test_bad_config_bad_route(self):
        self.check_bad_config('[ddlguard]\nlisten_port = {port}\n'
                              '[databases]\nappdb = host=127.0.0.1 port={pg_port} bogus_key=1\n',
                              'bogus_key')

    def test_bad_config_tls_required_without_cert(self):
        self.check_bad_config('[ddlguard]\nlisten_port = {port}\nclient_tls_sslmode = require\n'
                              '[databases]\n* = host=127.0.0.1 port={pg_port}\n')

    def test_documented_config_style(self):
        """The documented layout: inline ';' comments, an empty value, route options."""
        port = free_port()
        path = self.write_config(
            '; ddlguard configuration\n'
            '[ddlguard]\n'
            'listen_addr = 127.0.0.1\n'
            f'listen_port = {port}\n'
            'unix_socket_dir =            ; empty = no unix socket; else .s.PGSQL.<listen_port> in it\n'
            'client_tls_sslmode = disable ; disable | allow | require\n'
            'server_tls_sslmode = prefer  ; disable | prefer | require | verify-ca | verify-full\n'
            'client_login_timeout = 60    ; seconds\n'
            'server_connect_timeout = 15\n'
            'cancel_wait_timeout = 10\n'
            'shutdown_timeout = 30\n'
            'max_client_conn = 1000\n'
            'max_packet_size = 1073741823 ; cap on one client message (bytes)\n'
            'log_level = info             ; error | warning | info | debug\n'
            'logfile =\n'
            '\n'
            '[databases]\n'
            'appdb = host=127.0.0.1 port={pg_port} dbname=appdb environment=staging '
            'server_tls_sslmode=require\n'
            '* = host=127.0.0.1 port={pg_port}\n')
        p = self.start_proxy(argv=['-c', path], port=port)
        c = self.connect(proxy=p)
        self.assertIs(self.scalar(c, 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'), True)
        c2 = self.connect(proxy=p, db='appdb2')
        self.assertEqual(self.scalar(c2, 'SELECT current_database()'), 'appdb2')

    def test_logfile(self):
        log = os.path.join(subdir('proxy'), f'{self._testMethodName}.out.log')
        p = self.start_proxy({'logfile': log})
        self.assertProxyServes(p)
        time.sleep(0.5)
        self.assertTrue(os.path.exists(log), 'logfile not created')
        with open(log) as f:
            self.assertIn('trust_user', f.read(), 'the session is not in the logfile')

    def test_listen_port_in_use(self):
        p1 = self.start_proxy()
        path = self.write_config('[ddlguard]\nlisten_addr = 127.0.0.1\nlisten_port = %d\n'
                                 '[databases]\n* = host=127.0.0.1 port={pg_port}\n' % p1.port)
        p = self.ddlguard('-c', path, timeout=20)
        self.assertNotEqual(p.returncode, 0, 'started on a port already in use')
        self.assertProxyServes(p1)


class TestZeroConfig(CliTestCase):
    def test_upstream_plain(self):
        p = self.start_proxy(argv=['--upstream', self.upstream_url('disable'),
                                   '--listen', '127.0.0.1:{port}', '--environment', 'dev'])
        c = self.connect(proxy=p)
        self.assertEqual(self.scalar(c, 'SELECT current_database()'), APPDB)
        self.assertIs(self.scalar(c, 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'), False)

    def test_upstream_tls(self):
        p = self.start_proxy(argv=['--upstream', self.upstream_url('require', 'scram_user'),
                                   '--listen', '127.0.0.1:{port}'])
        c = self.connect('scram', proxy=p)
        self.assertIs(self.scalar(c, 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'), True)


class TestRunCommand(CliTestCase):
    def run_cmd(self, *cmd, env=None):
        return self.ddlguard('run', '--upstream', self.upstream_url(), '--', *cmd, env=env)

    def test_run_psql(self):
        p = self.run_cmd('psql', '-X', '-At', '-c', 'select 1',
                         env={'PGUSER': 'trust_user', 'PGDATABASE': APPDB, 'PGSSLMODE': 'disable'})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), '1')
        self.assertTrue(p.stderr.strip(), 'no summary on stderr')

    def test_run_sets_pghost_pgport(self):
        p = self.run_cmd('sh', '-c', 'echo "$PGHOST $PGPORT"')
        self.assertEqual(p.returncode, 0, p.stderr)
        host, port = p.stdout.split()
        self.assertIn(host, ('127.0.0.1', 'localhost'))
        self.assertNotEqual(int(port), self.pg.port)
        self.assertFalse(port_open('127.0.0.1', int(port)), 'ddlguard still listening after run')

    def test_run_goes_through_the_proxy(self):
        """The child's psql reaches the server through the port `run` chose (nothing but
        ddlguard listens there)."""
        p = self.run_cmd('sh', '-c', 'echo "$PGPORT"; psql -X -At -c "select current_user, '
                         'inet_server_port()"',
                         env={'PGUSER': 'trust_user', 'PGDATABASE': APPDB, 'PGSSLMODE': 'disable'})
        self.assertEqual(p.returncode, 0, p.stderr)
        port, row = p.stdout.split()
        self.assertNotEqual(int(port), self.pg.port)
        self.assertEqual(row, f'trust_user|{self.pg.port}')

    def test_run_rewrites_database_url(self):
        url = f'postgres://trust_user@{self.pg.host}:{self.pg.port}/{APPDB}?sslmode=disable'
        p = self.run_cmd('sh', '-c', 'echo "$DATABASE_URL"; echo "$PGPORT"; '
                         'psql -X -At "$DATABASE_URL" -c "select current_database()"',
                         env={'DATABASE_URL': url})
        self.assertEqual(p.returncode, 0, p.stderr)
        new_url, port, db = p.stdout.split()
        self.assertNotEqual(new_url, url)
        self.assertIn(f':{port}/', new_url)
        self.assertIn('trust_user@', new_url)
        self.assertIn(f'/{APPDB}', new_url)
        self.assertEqual(db, APPDB)

    def test_run_database_url_keeps_credentials_and_parameters(self):
        url = (f'postgresql://md5_user:md5_pw@{self.pg.host}:{self.pg.port}/{APPDB}'
               f'?application_name=urlapp&sslmode=disable')
        p = self.run_cmd('sh', '-c', 'psql -X -At "$DATABASE_URL" -c "select current_user, '
                         'current_setting(\'application_name\')"', env={'DATABASE_URL': url})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), 'md5_user|urlapp')

    def test_run_url_of_another_driver(self):
        """Prisma-style parameters libpq does not know: the URL is rewritten as text (host
        and port replaced, the rest kept), not refused."""
        url = (f'postgresql://trust_user@{self.pg.host}:{self.pg.port}/{APPDB}'
               f'?schema=public&connection_limit=1&sslmode=require')
        p = self.run_cmd('sh', '-c', 'echo "$DATABASE_URL"; echo "$PGPORT"', env={'DATABASE_URL': url})
        self.assertEqual(p.returncode, 0, p.stderr)
        new_url, port = p.stdout.split()
        self.assertEqual(new_url, f'postgresql://trust_user@127.0.0.1:{port}/{APPDB}'
                                  f'?schema=public&connection_limit=1&sslmode=disable')

    def test_run_plain_loopback_leg(self):
        """ddlguard has no client TLS: the command is told sslmode=disable both ways (lib/pq
        and node-postgres default to TLS, and node-postgres takes prefer as require)."""
        url = f'postgres://trust_user@{self.pg.host}:{self.pg.port}/{APPDB}'
        p = self.run_cmd('sh', '-c', 'echo "$PGSSLMODE"; echo "$DATABASE_URL"',
                         env={'DATABASE_URL': url, 'PGSSLMODE': 'verify-full'})
        self.assertEqual(p.returncode, 0, p.stderr)
        mode, new_url = p.stdout.split()
        self.assertEqual(mode, 'disable')
        self.assertTrue(new_url.endswith('sslmode=disable'), new_url)

    def test_run_with_rules_summary(self):
        """--rules default loads the rule library; the summary counts the decisions."""
        env = {'PGUSER': 'trust_user', 'PGDATABASE': APPDB}
        self.pg.psql_admin('CREATE TABLE run_rules_t (id int); ALTER TABLE run_rules_t OWNER TO trust_user')
        p = self.ddlguard('run', '--upstream', self.upstream_url(), '--rules', 'default', '--',
                          'psql', '-X', '-v', 'ON_ERROR_STOP=1',
                          '-c', 'CREATE INDEX CONCURRENTLY run_rules_i ON run_rules_t (id)',
                          '-c', 'BEGIN; LOCK TABLE run_rules_t; COMMIT', env=env)
        try:
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            self.assertIn('ddlguard rule: explicit-lock-table', p.stderr)
            self.assertIn('Guarded statements: 1 allowed, 0 warned, 1 denied.', p.stderr)
            p = self.ddlguard('run', '--upstream', self.upstream_url(), '--', 'true')
            self.assertIn('Statements were relayed unchecked: no policies are loaded', p.stderr)
            p = self.ddlguard('run', '--upstream', self.upstream_url(), '--rules', 'lenient', '--', 'true')
            self.assertEqual(p.returncode, 2)
            self.assertIn('invalid --rules "lenient"', p.stderr)
        finally:
            self.pg.psql_admin('DROP TABLE IF EXISTS run_rules_t')

    def test_run_exit_status(self):
        p = self.run_cmd('sh', '-c', 'exit 3')
        self.assertEqual(p.returncode, 3, p.stderr)

    def test_run_psql_error_status(self):
        p = self.run_cmd('psql', '-X', '-c', 'select * from no_such_table',
                         env={'PGUSER': 'trust_user', 'PGDATABASE': APPDB, 'PGSSLMODE': 'disable'})
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn('no_such_table', p.stderr)

    def test_run_with_config_file(self):
        path = self.write_config('[ddlguard]\nlisten_port = {port}\n'
                                 '[databases]\n* = host=127.0.0.1 port={pg_port}\n')
        p = self.ddlguard('run', '-c', path, '--', 'psql', '-X', '-At', '-c', 'select 2',
                          env={'PGUSER': 'trust_user', 'PGDATABASE': APPDB, 'PGSSLMODE': 'disable'})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), '2')

    def test_run_child_killed_by_signal(self):
        p = self.run_cmd('sh', '-c', 'kill -KILL $$')
        self.assertEqual(p.returncode, 128 + 9, p.stderr)

    def test_run_missing_command(self):
        p = self.run_cmd('/nonexistent/command')
        self.assertNotEqual(p.returncode, 0)


class TestSignals(CliTestCase):
    def test_sigterm_stops_accepting_and_lets_session_finish(self):
        p = self.start_proxy({'shutdown_timeout': '20'})
        c = self.connect(proxy=p)
        self.assertEqual(self.scalar(c, 'SELECT 1'), 1)
        p.signal(signal.SIGTERM)
        time.sleep(1)
        with self.assertRaises(psycopg2.OperationalError, msg='a new client was accepted after SIGTERM'):
            psycopg2.connect(self.conninfo(proxy=p, connect_timeout=5)).close()
        # the open session is allowed to finish its work
        self.assertEqual(self.scalar(c, 'SELECT 2'), 2)
        self.assertTrue(p.alive(), 'exited before the session ended')
        c.close()
        status = p.wait(10)
        self.assertIsNotNone(status, 'did not exit after its last session closed')
        self.assertEqual(status, 0)

    def test_sigterm_lets_running_query_finish(self):
        p = self.start_proxy({'shutdown_timeout': '20'})
        c = self.connect(proxy=p)
        result = {}

        def query():
            try:
                result['v'] = self.scalar(c, 'SELECT 5 FROM pg_sleep(2)')
            except psycopg2.Error as e:
                result['v'] = e
        t = threading.Thread(target=query)
        t.start()
        time.sleep(0.5)
        p.signal(signal.SIGTERM)
        t.join(30)
        self.assertEqual(result.get('v'), 5, f'the running query did not finish: {result}')
        c.close()
        self.assertIsNotNone(p.wait(10), 'did not exit after its last session closed')

    def test_sigterm_timeout_sends_57P01(self):
        p = self.start_proxy({'shutdown_timeout': '2'})
        with wire.Conn(p.host, p.port, timeout=20) as c:
            c.login('trust_user', APPDB)
            p.signal(signal.SIGTERM)
            m = c.recv()          # idle: whatever arrives is ddlguard's doing
            self.assertEqual(m.kind, b'E', m)
            self.assertEqual((m.fields().get('S'), m.sqlstate), ('FATAL', '57P01'), m.fields())
            self.assertTrue(c.wait_closed(5))
        self.assertIsNotNone(p.wait(10))

    def test_sigterm_shutdown_timeout(self):
        p = self.start_proxy({'shutdown_timeout': '2'})
        c = self.connect(proxy=p)
        p.signal(signal.SIGTERM)
        t0 = time.monotonic()
        status = p.wait(15)
        self.assertIsNotNone(status, 'still running 15 s after SIGTERM with shutdown_timeout=2')
        self.assertGreater(time.monotonic() - t0, 1.0, 'did not wait for the open session')
        with self.assertRaises(psycopg2.Error):
            self.scalar(c, 'SELECT 1')

    def test_sigint_exits_at_once(self):
        p = self.start_proxy({'shutdown_timeout': '30'})
        self.connect(proxy=p)
        p.signal(signal.SIGINT)
        self.assertIsNotNone(p.wait(3), 'still running 3 s after SIGINT')

    def test_sighup_reloads_routes(self):
        routes = {'appdb': 'host={pg_host} port={pg_port} dbname=appdb'}
        p = self.start_proxy(databases=routes)
        before = self.connect(proxy=p)
        self.assertEqual(self.scalar(before, 'SELECT current_database()'), 'appdb')
        with wire.Conn(p.host, p.port) as w:
            with self.assertRaises(wire.LoginError) as cm:
                w.login('trust_user', 'other')
            self.assertEqual(cm.exception.sqlstate, '3D000')
        p.write_config(databases={'appdb': 'host={pg_host} port={pg_port} dbname=appdb2',
                                  'other': 'host={pg_host} port={pg_port} dbname=appdb'})
        p.signal(signal.SIGHUP)

        def reloaded():
            try:
                c = psycopg2.connect(self.conninfo(proxy=p, db='other'))
            except psycopg2.OperationalError:
                return False
            c.close()
            return True
        wait_for(reloaded, 10, 0.2, what='the new route to work after SIGHUP')
        after = self.connect(proxy=p)
        self.assertEqual(self.scalar(after, 'SELECT current_database()'), 'appdb2')
        # the session opened before the reload keeps its server
        self.assertEqual(self.scalar(before, 'SELECT current_database()'), 'appdb')

    def test_sighup_with_broken_config_keeps_running(self):
        p = self.start_proxy()
        with open(p.config_path, 'a') as f:
            f.write('this is not a valid line\n')
        p.signal(signal.SIGHUP)
        time.sleep(1)
        self.assertTrue(p.alive(), 'exited on a bad config reload')
        self.assertProxyServes(p)

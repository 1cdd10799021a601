"""Shared machinery for ddlguard's integration tests.

* One throwaway PostgreSQL 15 cluster serves the whole run. It is started on first use in a
  temporary directory, on a free loopback port, with ssl=on (a test CA signs its certificate),
  one role per authentication method and pg_hba rules that enforce those methods.
* Each test class gets its own ddlguard process, configured by the class attributes `settings`
  ([ddlguard] keys) and `databases` ([databases] routes). It is started lazily by setUp, restarted
  if a test killed it, and stopped by tearDownClass, which fails the class if the sanitizers
  reported anything.
* Everything started here is stopped at exit, on failure and on SIGTERM/SIGINT/SIGHUP.

Environment:
  DDLGUARD_BIN      the binary under test (default: <repo>/build-asan/ddlguard)
  DDLG_TEST_DIRECT  =1 points clients at PostgreSQL itself (harness development only; tests that
                    need the proxy are skipped)
  DDLG_TEST_KEEP    =1 keeps the temporary directory (logs, configs, data) after the run
                    (it is always kept when something failed)
  DDLG_TEST_TMPDIR  where to create that directory (default: /tmp as root, else $TMPDIR)
"""

import atexit
import hashlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import psycopg2
import psycopg2.extensions

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PGBIN = '/usr/lib/postgresql/15/bin'
PSQL = os.path.join(PGBIN, 'psql')
JDBC_JAR = '/usr/share/java/postgresql.jar'
DIRECT = os.environ.get('DDLG_TEST_DIRECT') == '1'
KEEP = os.environ.get('DDLG_TEST_KEEP') == '1'
IS_ROOT = os.geteuid() == 0

# Sanitizer output that fails a test (or, when seen at shutdown, the test class).
SANITIZER_PATTERNS = ('ERROR: AddressSanitizer', 'runtime error:', 'ERROR: LeakSanitizer')

# The roles the cluster has, by authentication method: (role, password).
USERS = {
    'trust': ('trust_user', None),
    'password': ('clear_user', 'clear_pw'),
    'md5': ('md5_user', 'md5_pw'),
    'scram': ('scram_user', 'scram_pw'),
    'tls': ('tls_user', 'tls_pw'),      # scram-sha-256, and only over TLS (hostssl)
    # SCRAM with a password whose SASLprep form differs from its bytes: U+00A0 maps to a space,
    # U+FB01 (the "fi" ligature) to "fi". PostgreSQL stored the verifier of the prepared form.
    'scram_unicode': ('scram_uni', 'caf\u00e9\u00a0\ufb01x'),
    'unicode_name': ('Ünï user', None),  # trust; a role name that needs quoting
}
UNICODE_DB = 'ddlg ünï db'
APPDB = 'appdb'


def ddlguard_bin():
    return os.environ.get('DDLGUARD_BIN') or os.path.join(REPO, 'build-asan', 'ddlguard')


# ---------------------------------------------------------------------------------------------
# Process bookkeeping and cleanup

_workdir = None
_cleanups = []          # callables run at exit, last registered first
_lock = threading.RLock()


def workdir():
    """The run's temporary directory (created on first use)."""
    global _workdir
    with _lock:
        if _workdir is None:
            # the postgres user must be able to reach it: as root, stay out of e.g. /root/tmp
            base = os.environ.get('DDLG_TEST_TMPDIR') or ('/tmp' if IS_ROOT else None)
            _workdir = tempfile.mkdtemp(prefix='ddlg-it-', dir=base)
            os.chmod(_workdir, 0o755)
    return _workdir


def subdir(name):
    path = os.path.join(workdir(), name)
    os.makedirs(path, exist_ok=True)
    return path


def at_exit(fn):
    _cleanups.append(fn)


def cleanup_all():
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception as e:  # keep going: everything else must still be stopped
            print(f'harness: cleanup error: {e}', file=sys.stderr)


def remove_workdir(keep=False):
    if _workdir and os.path.isdir(_workdir):
        if keep or KEEP:
            print(f'harness: logs and data kept in {_workdir}', file=sys.stderr)
        else:
            shutil.rmtree(_workdir, ignore_errors=True)


atexit.register(cleanup_all)


def _on_signal(signum, frame):
    cleanup_all()
    remove_workdir(keep=True)
    os._exit(128 + signum)


for _sig in (signal.SIGTERM, signal.SIGHUP):
    signal.signal(_sig, _on_signal)


# ---------------------------------------------------------------------------------------------
# Small helpers

def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_for(pred, timeout, interval=0.05, what='condition'):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f'timed out after {timeout}s waiting for {what}')
        time.sleep(interval)


def port_open(host, port):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def run(cmd, timeout=120, check=True, **kw):
    """subprocess.run with captured text output and a timeout."""
    kw.setdefault('capture_output', True)
    kw.setdefault('text', True)
    p = subprocess.run(cmd, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f'{cmd!r} exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}')
    return p


def as_postgres(cmd):
    """initdb refuses to run as root: run cluster commands as the postgres user then."""
    return ['runuser', '-u', 'postgres', '--'] + cmd if IS_ROOT else cmd


def chown_postgres(path):
    if IS_ROOT:
        pw = pwd.getpwnam('postgres')
        os.chown(path, pw.pw_uid, pw.pw_gid)


def tail(path, n=40):
    try:
        with open(path, 'r', errors='replace') as f:
            return ''.join(f.readlines()[-n:])
    except OSError:
        return '(no file)'


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


_compiled = {}


def compile_c(name):
    """Compiles tests/integration/c/<name>.c against libpq into the run's directory, once."""
    with _lock:
        if name in _compiled:
            return _compiled[name]
        src = os.path.join(HERE, 'c', name + '.c')
        out = os.path.join(subdir('bin'), name)
        flags = run(['pkg-config', '--cflags', '--libs', 'libpq']).stdout.split()
        run(['cc', '-O1', '-g', '-Wall', '-Werror', '-o', out, src] + flags)
        _compiled[name] = out
        return out


def compile_java(name):
    """Compiles tests/integration/jdbc/<name>.java against Debian's pgjdbc; returns a classpath."""
    with _lock:
        key = 'java:' + name
        if key in _compiled:
            return _compiled[key]
        out = subdir('jdbc')
        run(['javac', '-cp', JDBC_JAR, '-d', out, os.path.join(HERE, 'jdbc', name + '.java')])
        _compiled[key] = out + ':' + JDBC_JAR
        return _compiled[key]


# ---------------------------------------------------------------------------------------------
# Certificates (openssl CLI)

class Certs:
    """A test CA, a PostgreSQL server certificate and a ddlguard certificate signed by it
    (SAN 127.0.0.1 and localhost), and an unrelated "wrong" CA."""

    def __init__(self, d):
        self.dir = d
        self.ca, self.ca_key = self._p('ca.crt'), self._p('ca.key')
        self.wrong_ca, self.wrong_ca_key = self._p('wrong-ca.crt'), self._p('wrong-ca.key')
        self.server, self.server_key = self._p('server.crt'), self._p('server.key')
        self.proxy, self.proxy_key = self._p('proxy.crt'), self._p('proxy.key')

    def _p(self, name):
        return os.path.join(self.dir, name)

    def _openssl(self, *args):
        run(['openssl'] + list(args))

    def _make_ca(self, crt, key, cn):
        self._openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', crt,
                      '-days', '3650', '-subj', f'/CN={cn}',
                      '-addext', 'basicConstraints=critical,CA:TRUE',
                      '-addext', 'keyUsage=critical,keyCertSign,cRLSign')

    def _make_leaf(self, crt, key, cn):
        csr = crt + '.csr'
        ext = crt + '.ext'
        with open(ext, 'w') as f:
            f.write('basicConstraints=CA:FALSE\n'
                    'keyUsage=digitalSignature,keyEncipherment\n'
                    'extendedKeyUsage=serverAuth\n'
                    'subjectAltName=IP:127.0.0.1,DNS:localhost\n')
        self._openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr,
                      '-subj', f'/CN={cn}')
        self._openssl('x509', '-req', '-in', csr, '-CA', self.ca, '-CAkey', self.ca_key,
                      '-CAcreateserial', '-out', crt, '-days', '3650', '-extfile', ext)

    def generate(self):
        self._make_ca(self.ca, self.ca_key, 'ddlguard test CA')
        self._make_ca(self.wrong_ca, self.wrong_ca_key, 'some other CA')
        self._make_leaf(self.server, self.server_key, '127.0.0.1')
        self._make_leaf(self.proxy, self.proxy_key, '127.0.0.1')
        for f in os.listdir(self.dir):
            os.chmod(self._p(f), 0o644 if f.endswith('.crt') else 0o600)
        return self


# ---------------------------------------------------------------------------------------------
# PostgreSQL

HBA = """\
# TYPE    DATABASE USER        ADDRESS       METHOD
local     all      all                       trust
host      all      postgres    127.0.0.0/8   trust
host      all      trust_user  127.0.0.0/8   trust
host      all      clear_user  127.0.0.0/8   password
host      all      md5_user    127.0.0.0/8   md5
hostssl   all      scram_user  127.0.0.0/8   scram-sha-256
hostnossl all      scram_user  127.0.0.0/8   scram-sha-256
hostssl   all      tls_user    127.0.0.0/8   scram-sha-256
host      all      scram_uni   127.0.0.0/8   scram-sha-256
host      all      "Ünï user"  127.0.0.0/8   trust
"""

SETUP_SQL = """
SET password_encryption = 'scram-sha-256';
CREATE ROLE trust_user LOGIN;
CREATE ROLE clear_user LOGIN PASSWORD 'clear_pw';
CREATE ROLE scram_user LOGIN PASSWORD 'scram_pw';
CREATE ROLE tls_user LOGIN PASSWORD 'tls_pw';
CREATE ROLE scram_uni LOGIN PASSWORD 'caf\u00e9\u00a0\ufb01x';
CREATE ROLE "Ünï user" LOGIN;
SET password_encryption = 'md5';
CREATE ROLE md5_user LOGIN PASSWORD 'md5_pw';
CREATE DATABASE appdb;
CREATE DATABASE appdb2;
CREATE DATABASE "ddlg ünï db";
"""

DB_SETUP_SQL = """
GRANT ALL ON SCHEMA public TO PUBLIC;
CREATE SCHEMA foo;
GRANT ALL ON SCHEMA foo TO PUBLIC;
CREATE TABLE inject_log (id bigserial PRIMARY KEY, at timestamptz DEFAULT clock_timestamp(),
                         who text DEFAULT current_user);
GRANT ALL ON inject_log TO PUBLIC;
GRANT ALL ON SEQUENCE inject_log_id_seq TO PUBLIC;
"""


class PgCluster:
    def __init__(self):
        self.dir = subdir('pg')
        chown_postgres(self.dir)
        self.data = os.path.join(self.dir, 'data')
        self.log = os.path.join(self.dir, 'postgres.log')
        self.port = free_port()
        self.host = '127.0.0.1'
        self.certs = Certs(subdir('certs')).generate()
        self.started = False

    def start(self):
        run(as_postgres([os.path.join(PGBIN, 'initdb'), '-D', self.data, '-U', 'postgres',
                         '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync']), timeout=180)
        for src, name in ((self.certs.server, 'server.crt'), (self.certs.server_key, 'server.key')):
            dst = os.path.join(self.data, name)
            shutil.copy(src, dst)
            os.chmod(dst, 0o600)
            chown_postgres(dst)
        with open(os.path.join(self.data, 'postgresql.conf'), 'a') as f:
            f.write(f"""
listen_addresses = '127.0.0.1,127.0.0.2'
port = {self.port}
unix_socket_directories = '{self.dir}'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
max_wal_size = 4GB
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
log_connections = on
log_disconnections = on
log_line_prefix = '%m [%p] %u@%d '
""")
        with open(os.path.join(self.data, 'pg_hba.conf'), 'w') as f:
            f.write(HBA)
        at_exit(self.stop)
        run(as_postgres([os.path.join(PGBIN, 'pg_ctl'), '-D', self.data, '-l', self.log, '-w',
                         '-t', '120', 'start']), timeout=180)
        self.started = True
        self.psql_admin(SETUP_SQL, db='postgres')
        self.psql_admin(DB_SETUP_SQL, db='appdb')
        self.psql_admin('GRANT ALL ON SCHEMA public TO PUBLIC;', db='appdb2')
        return self

    def restart(self):
        """Restarts the server (fast mode: open sessions are terminated)."""
        run(as_postgres([os.path.join(PGBIN, 'pg_ctl'), '-D', self.data, '-l', self.log, '-m', 'fast',
                         '-w', '-t', '120', 'restart']), timeout=180)

    def stop(self):
        if self.started:
            self.started = False
            run(as_postgres([os.path.join(PGBIN, 'pg_ctl'), '-D', self.data, '-m', 'immediate',
                             '-w', 'stop']), check=False, timeout=60)

    def psql_admin(self, sql, db='appdb'):
        return run([PSQL, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', self.dir, '-p', str(self.port),
                    '-U', 'postgres', '-d', db], input=sql,
                   env=dict(os.environ, PGCLIENTENCODING='UTF8')).stdout

    def admin(self, db='appdb'):
        """A superuser connection straight to the server (unix socket), in autocommit."""
        c = psycopg2.connect(host=self.dir, port=self.port, user='postgres', dbname=db)
        c.autocommit = True
        return c

    def query(self, sql, args=None, db='appdb'):
        """Runs one statement as superuser directly on the server and returns all rows."""
        c = self.admin(db)
        try:
            with c.cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchall() if cur.description else None
        finally:
            c.close()

    def backends(self, **where):
        """Client backends on the server whose pg_stat_activity columns match `where`."""
        conds = ' AND '.join(f'{k} = %s' for k in where) or 'true'
        return self.query(f"SELECT pid, usename, application_name, state FROM pg_stat_activity "
                          f"WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() "
                          f"AND {conds}", tuple(where.values()))

    def vars(self):
        """Values that config templates may use as {name}."""
        return dict(pg_host=self.host, pg_port=self.port, pg_socket_dir=self.dir,
                    ca=self.certs.ca, wrong_ca=self.certs.wrong_ca,
                    proxy_cert=self.certs.proxy, proxy_key=self.certs.proxy_key)


_cluster = None


def cluster():
    global _cluster
    with _lock:
        if _cluster is None:
            c = PgCluster()
            c.start()
            _cluster = c
    return _cluster


# ---------------------------------------------------------------------------------------------
# ddlguard

DEFAULT_SETTINGS = {
    'listen_addr': '127.0.0.1',
    'log_level': 'info',
    'shutdown_timeout': '5',
}


class ProxyStartError(Exception):
    pass


class Proxy:
    """One ddlguard process. Either `settings`/`databases` (a config file is generated; string
    values may use {pg_port}, {ca}, ... from PgCluster.vars()) or raw `argv` (no config file)."""

    _serial = 0

    def __init__(self, name, settings=None, databases=None, argv=None, env=None, port=None,
                 preexec_fn=None):
        Proxy._serial += 1
        self.name = f'{name}-{Proxy._serial}'
        self.pg = cluster()
        self.dir = subdir('proxy')
        self.host = '127.0.0.1'
        self.port = port or free_port()
        self.preexec_fn = preexec_fn
        self.proc = None
        self.stderr_path = os.path.join(self.dir, self.name + '.log')
        self.config_path = os.path.join(self.dir, self.name + '.ini')
        self.argv = argv
        self.extra_env = env or {}
        self.settings = dict(DEFAULT_SETTINGS, **(settings or {}))
        self.databases = databases if databases is not None else {'*': 'host={pg_host} port={pg_port}'}
        self.exit_status = None
        if DIRECT:
            self.port = self.pg.port

    # -- configuration
    def render(self, value):
        return str(value).format(port=self.port, **self.pg.vars())

    def write_config(self, settings=None, databases=None):
        if settings is not None:
            self.settings = dict(DEFAULT_SETTINGS, **settings)
        if databases is not None:
            self.databases = databases
        lines = ['[ddlguard]', f'listen_port = {self.port}']
        lines += [f'{k} = {self.render(v)}' for k, v in self.settings.items()]
        lines += ['', '[databases]']
        lines += [f'{k} = {self.render(v)}' for k, v in self.databases.items()]
        with open(self.config_path, 'w') as f:
            f.write('\n'.join(lines) + '\n')

    # -- lifecycle
    def env(self):
        env = dict(os.environ)
        env['ASAN_OPTIONS'] = 'detect_leaks=1:abort_on_error=0'
        env['UBSAN_OPTIONS'] = 'print_stacktrace=1:halt_on_error=0'
        env.update(self.extra_env)
        return env

    def command(self):
        if self.argv is not None:
            return [ddlguard_bin()] + [self.render(a) for a in self.argv]
        self.write_config()
        return [ddlguard_bin(), '-c', self.config_path]

    def start(self, timeout=20):
        if DIRECT:
            return self
        binary = ddlguard_bin()
        if not os.access(binary, os.X_OK):
            raise ProxyStartError(f'{binary} is missing: build it with scripts/build.sh --asan '
                                  f'or set DDLGUARD_BIN')
        cmd = self.command()
        self.exit_status = None
        with open(self.stderr_path, 'ab') as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env=self.env(), start_new_session=True,
                                         preexec_fn=self.preexec_fn)
        _live_proxies.add(self)
        deadline = time.monotonic() + timeout
        while not port_open(self.host, self.port):
            if self.proc.poll() is not None:
                self.exit_status = self.proc.returncode
                raise ProxyStartError(f'ddlguard exited with status {self.proc.returncode} at start '
                                      f'({" ".join(cmd)}):\n{tail(self.stderr_path)}')
            if time.monotonic() > deadline:
                self.kill()
                raise ProxyStartError(f'ddlguard did not listen on {self.port} within {timeout}s:\n'
                                      f'{tail(self.stderr_path)}')
            time.sleep(0.05)
        return self

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return DIRECT or (self.proc is not None and self.proc.poll() is None)

    def signal(self, sig):
        if not DIRECT and self.alive():
            self.proc.send_signal(sig)

    def wait(self, timeout):
        """Waits for the process to exit; returns its status (None if still running)."""
        if DIRECT or self.proc is None:
            return None
        try:
            self.exit_status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        _live_proxies.discard(self)
        return self.exit_status

    def stop(self, timeout=15):
        """SIGTERM, then SIGKILL if it does not exit in time. Returns the exit status."""
        if DIRECT or self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            if self.wait(timeout) is None:
                self.kill()
                raise AssertionError(f'ddlguard did not exit within {timeout}s of SIGTERM; killed')
        self.exit_status = self.proc.returncode
        _live_proxies.discard(self)
        return self.exit_status

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        _live_proxies.discard(self)

    # -- observation
    def log_text(self):
        try:
            with open(self.stderr_path, 'r', errors='replace') as f:
                return f.read()
        except OSError:
            return ''

    def log_size(self):
        try:
            return os.path.getsize(self.stderr_path)
        except OSError:
            return 0

    def sanitizer_report(self, since=0):
        """Sanitizer findings in the log after byte offset `since` ('' if none)."""
        try:
            with open(self.stderr_path, 'r', errors='replace') as f:
                f.seek(since)
                text = f.read()
        except OSError:
            return ''
        for pat in SANITIZER_PATTERNS:
            i = text.find(pat)
            if i >= 0:
                return text[max(0, i - 200):i + 4000]
        return ''

    def fd_count(self):
        return len(os.listdir(f'/proc/{self.pid}/fd'))

    def rss_kb(self):
        with open(f'/proc/{self.pid}/status') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
        return 0


class _LiveSet(set):
    def kill_all(self):
        for p in list(self):
            p.kill()


_live_proxies = _LiveSet()
at_exit(_live_proxies.kill_all)


def kill_live_proxies():
    """Used by the runner's watchdog: unblocks a test that waits on a hung proxy."""
    _live_proxies.kill_all()


# ---------------------------------------------------------------------------------------------
# Base test case

def proxy_only(fn_or_cls):
    """Marks a test (or class) whose expectations are about ddlguard itself."""
    return unittest.skipIf(DIRECT, 'needs ddlguard (DDLG_TEST_DIRECT=1)')(fn_or_cls)


class ProxyTestCase(unittest.TestCase):
    """A test class with its own ddlguard, configured by `settings` and `databases`."""

    settings = {}
    databases = None
    class_proxy = True      # False: the tests start their own proxies (start_proxy)
    proxy = None
    _start_error = None

    @classmethod
    def setUpClass(cls):
        cls.pg = cluster()
        cls.proxy = None
        cls._start_error = None
        cls._reports = []

    @classmethod
    def tearDownClass(cls):
        p, cls.proxy = cls.proxy, None
        if p is not None:
            cls._finish_proxy(p)
        if cls._reports:
            raise AssertionError('\n\n'.join(cls._reports))

    @classmethod
    def _finish_proxy(cls, p):
        try:
            status = p.stop()
        except AssertionError as e:
            cls._reports.append(f'{p.name}: {e}')
            status = None
        rep = p.sanitizer_report()
        if rep:
            cls._reports.append(f'{p.name}: sanitizer report in {p.stderr_path} (exit status '
                                f'{status}):\n{rep}')

    def setUp(self):
        cls = type(self)
        if cls._start_error:
            self.fail(f'ddlguard could not be started for this class: {cls._start_error}')
        if cls.proxy is not None and not cls.proxy.alive():
            cls.proxy.kill()              # it died in an earlier test, which reported it
            cls.proxy = None
        if cls.proxy is None and cls.class_proxy:
            try:
                cls.proxy = Proxy(cls.__name__, cls.settings, cls.databases).start()
            except ProxyStartError as e:
                cls._start_error = str(e)
                self.fail(f'ddlguard could not be started: {e}')
        self._log_offset = cls.proxy.log_size() if cls.proxy else 0

    def tearDown(self):
        problems = []
        p = type(self).proxy
        if p is not None and not DIRECT:
            if not p.alive():
                problems.append(f'ddlguard ({p.name}) exited during this test with status '
                                f'{p.proc.returncode}:\n{tail(p.stderr_path)}')
            rep = p.sanitizer_report(self._log_offset)
            if rep:
                problems.append(f'sanitizer report during this test in {p.stderr_path}:\n{rep}')
        if problems:
            self.fail('\n\n'.join(problems))

    # -- more proxies, owned by one test
    def start_proxy(self, settings=None, databases=None, argv=None, start=True, **kw):
        """A ddlguard for this test only. It is stopped (and its log checked) after the test's
        own cleanups registered later, e.g. its client connections, have run."""
        p = Proxy(f'{type(self).__name__}.{self._testMethodName}', settings, databases, argv, **kw)
        self.addCleanup(self._finish_own_proxy, p)
        if start:
            p.start()
        return p

    def _finish_own_proxy(self, p):
        problems = []
        if p.alive():
            try:
                p.stop()
            except AssertionError as e:
                problems.append(f'{p.name}: {e}')
        rep = p.sanitizer_report()
        if rep:
            problems.append(f'{p.name}: sanitizer report in {p.stderr_path}:\n{rep}')
        if problems:
            self.fail('\n\n'.join(problems))

    # -- clients
    def conninfo(self, user='trust', db=APPDB, proxy=None, password=None, **kw):
        p = proxy or self.proxy
        role, pw = USERS[user]
        params = dict(host=p.host, port=p.port, user=role, dbname=db, sslmode='disable',
                      connect_timeout=10)
        if password is not None:
            params['password'] = password
        elif pw:
            params['password'] = pw
        params.update(kw)
        return ' '.join(f"{k}='{v}'" for k, v in params.items())

    def connect(self, user='trust', db=APPDB, proxy=None, autocommit=True, **kw):
        c = psycopg2.connect(self.conninfo(user, db, proxy, **kw))
        c.autocommit = autocommit
        self.addCleanup(c.close)
        return c

    def scalar(self, conn, sql, args=None):
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchone()[0]

    def psql(self, conninfo, *args, input=None, env=None, timeout=60):
        e = dict(os.environ, PGCONNECT_TIMEOUT='10')
        e.pop('PGPASSWORD', None)
        e.update(env or {})
        return subprocess.run([PSQL, '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-d', conninfo] + list(args),
                              input=input, capture_output=True, text=True, timeout=timeout, env=e)

    def assertProxyServes(self, proxy=None):
        """A fresh normal client gets an answer through the proxy."""
        c = psycopg2.connect(self.conninfo(proxy=proxy))
        try:
            with c.cursor() as cur:
                cur.execute('SELECT 40 + 2')
                self.assertEqual(cur.fetchone()[0], 42)
        finally:
            c.close()

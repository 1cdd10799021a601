#!/usr/bin/python3
"""Captures real PostgreSQL traffic and turns it into the fuzz targets' seed corpora.

    capture.py tee PORT HOST:PORT DIR     a TCP tee: listen on 127.0.0.1:PORT, forward every
                                          connection to HOST:PORT, write each one's bytes to
                                          DIR/conn-N.cap (until interrupted)
    capture.py collect [--keep]           start a throwaway PostgreSQL 15, run psql, psycopg2,
                                          pgjdbc and node-postgres (and libpq's pipeline mode)
                                          through the tee, and write seeds for every target to
                                          tests/fuzz/work/seeds/<target>/ (run.sh --merge-seeds
                                          then keeps the ones that add coverage)
    capture.py seeds CAPDIR OUTDIR        only the last step, on captures already made

A capture file is a sequence of records, one per recv() on either side, in the order they
happened: one byte 'C' (client to server) or 'S' (server to client), a 4-byte big-endian
length, the bytes. The recv() boundaries are the real splits TCP gave, which the relay
seeds keep.

The clients' workloads are in tests/fuzz/clients/: workload.sql (psql), Traffic.java
(pgjdbc), traffic.js (node-postgres); psycopg2's is below. Every case of the rule library's
tests (tests/lua/*.sql) is sent too, as one Query by psycopg2 and as prepared statements by
pgjdbc, so the SQL seeds hold real migrations. The server runs without TLS, so clients
that ask for it (psql's default sslmode=prefer) get 'N' and go on in plain text.

Runs with /usr/bin/python3 (psycopg2 from Debian's python3-psycopg2).
"""

import hashlib
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PGBIN = '/usr/lib/postgresql/15/bin'
JDBC_JAR = '/usr/share/java/postgresql.jar'
NODE_MODULES = os.path.join(REPO, 'tests', 'clients', 'node', 'node_modules')
IS_ROOT = os.geteuid() == 0

# The fixed client nonce fuzz_scram puts in place of the random one (base64 of bytes 0..17).
FIXED_NONCE = 'AAECAwQFBgcICQoLDA0ODxAR'
SSL_CODE, GSS_CODE, CANCEL_CODE = 80877103, 80877104, 80877102

# ------------------------------------------------------------------------------------ the tee


class Tee:
    """Listens on 127.0.0.1:port and relays each connection to upstream, recording both
    directions into outdir/conn-N.cap."""

    def __init__(self, port, upstream, outdir):
        self.upstream = upstream
        self.outdir = outdir
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(('127.0.0.1', port))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.n = 0
        self.stopping = False
        os.makedirs(outdir, exist_ok=True)

    def serve(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                break
            self.n += 1
            threading.Thread(target=self._conn, args=(c, self.n), daemon=True).start()

    def start(self):
        threading.Thread(target=self.serve, daemon=True).start()
        return self

    def stop(self):
        self.stopping = True
        self.sock.close()

    def _conn(self, client, n):
        try:
            server = socket.create_connection(self.upstream)
        except OSError:
            client.close()
            return
        lock = threading.Lock()
        f = open(os.path.join(self.outdir, f'conn-{n:04d}.cap'), 'wb')
        done = []

        def pump(src, dst, tag):
            while True:
                try:
                    b = src.recv(65536)
                except OSError:
                    b = b''
                if not b:
                    break
                with lock:
                    f.write(tag + struct.pack('>I', len(b)) + b)
                    f.flush()
                try:
                    dst.sendall(b)
                except OSError:
                    break
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            with lock:
                done.append(tag)
                if len(done) == 2:
                    f.close()
                    client.close()
                    server.close()

        threading.Thread(target=pump, args=(client, server, b'C'), daemon=True).start()
        threading.Thread(target=pump, args=(server, client, b'S'), daemon=True).start()


def read_capture(path):
    """[(direction 'C' or 'S', bytes), ...] in the order recorded."""
    out = []
    with open(path, 'rb') as f:
        data = f.read()
    i = 0
    while i + 5 <= len(data):
        tag = chr(data[i])
        (n,) = struct.unpack('>I', data[i + 1:i + 5])
        out.append((tag, data[i + 5:i + 5 + n]))
        i += 5 + n
    return out


# ------------------------------------------------------------------------------- decoding


class Conversation:
    """One connection decoded: initial packets, and each direction's typed messages with
    the chunk they completed in."""

    def __init__(self, chunks):
        self.chunks = chunks
        self.initial = []          # client packets without a type byte (SSLRequest, startup, cancel)
        self.client = []           # (type, body) after the startup packet
        self.server = []           # (type, body), after any one-byte SSL/GSS answers
        self.ready_at = None       # index into chunks after which the session is ready
        self.aligned = []          # per chunk: both directions at a message boundary after it
        self._decode()

    def _decode(self):
        cbuf, sbuf = b'', b''
        client_typed = False       # past the StartupMessage
        server_bytes_pending = 0   # one-byte answers owed to SSLRequest/GSSENCRequest
        for idx, (tag, b) in enumerate(self.chunks):
            if tag == 'C':
                cbuf += b
                while True:
                    if not client_typed:
                        if len(cbuf) < 8:
                            break
                        (n,) = struct.unpack('>I', cbuf[:4])
                        if n < 8 or len(cbuf) < n:
                            break
                        pkt, cbuf = cbuf[:n], cbuf[n:]
                        self.initial.append(pkt)
                        code = struct.unpack('>I', pkt[4:8])[0]
                        if code in (SSL_CODE, GSS_CODE):
                            server_bytes_pending += 1
                        elif code != CANCEL_CODE:
                            client_typed = True
                        continue
                    if len(cbuf) < 5:
                        break
                    (n,) = struct.unpack('>I', cbuf[1:5])
                    if len(cbuf) < n + 1:
                        break
                    self.client.append((cbuf[0:1], cbuf[5:n + 1]))
                    cbuf = cbuf[n + 1:]
            else:
                sbuf += b
                while server_bytes_pending and sbuf:
                    sbuf = sbuf[1:]
                    server_bytes_pending -= 1
                while len(sbuf) >= 5:
                    (n,) = struct.unpack('>I', sbuf[1:5])
                    if len(sbuf) < n + 1:
                        break
                    t, body = sbuf[0:1], sbuf[5:n + 1]
                    self.server.append((t, body))
                    sbuf = sbuf[n + 1:]
                    if t == b'Z' and self.ready_at is None:
                        self.ready_at = idx
            self.aligned.append(client_typed and not cbuf and not sbuf)

    def steady_windows(self, size):
        """Runs of about `size` chunks after login (what the relay sees), each starting
        where both directions are at a message boundary."""
        if self.ready_at is None:
            return
        start = self.ready_at + 1
        while start < len(self.chunks):
            end = min(start + size, len(self.chunks))
            while end < len(self.chunks) and not self.aligned[end - 1]:
                end += 1
            yield self.chunks[start:end]
            start = end


# ---------------------------------------------------------------------------------- seeds


def frame(t, body):
    return t + struct.pack('>I', len(body) + 4) + body


def relay_ops(chunks, limit):
    """Encode chunks as fuzz_relay's ops (see fuzz_relay.c), up to about `limit` bytes."""
    out = bytearray()
    for tag, b in chunks:
        for i in range(0, len(b), 0xffff):
            piece = b[i:i + 0xffff]
            base = 0x00 if tag == 'C' else 0x40
            if len(piece) < 0x3f:
                out.append(base | len(piece))
            else:
                out.append(base | 0x3f)
                out += struct.pack('>H', len(piece))
            out += piece
            if len(out) >= limit:
                return bytes(out)
    return bytes(out)


def sql_texts(conv):
    """The SQL of every Query and Parse the client sent."""
    for t, body in conv.client:
        if t == b'Q':
            yield body.split(b'\0', 1)[0]
        elif t == b'P':
            parts = body.split(b'\0', 2)
            if len(parts) >= 2:
                yield parts[1]


def scram_seeds(conv, passwords):
    """fuzz_scram inputs: flags, password, server-first (client nonce replaced by the fixed
    one), server-final; one per password we might have used."""
    first = final = None
    cnonce = None
    for t, body in conv.client:
        if t == b'p':
            m = re.search(rb'n=[^,]*,r=([A-Za-z0-9+/=]+)', body)
            if m:
                cnonce = m.group(1)
    for t, body in conv.server:
        if t == b'R' and len(body) >= 4:
            code = struct.unpack('>I', body[:4])[0]
            if code == 11:
                first = body[4:]
            elif code == 12:
                final = body[4:]
    if not first or not cnonce:
        return
    first = first.replace(cnonce, FIXED_NONCE.encode())
    for pw in passwords:
        for flags in (0, 4):
            yield bytes([flags]) + pw.encode() + b'\n' + first + b'\n' + (final or b'')


def relay_scenarios():
    """fuzz_relay inputs written by hand for what captured traffic lacks: a guarded
    statement retried after a lock timeout (resent, given up, retried until it fails), a
    denied Query and Parse whose errors are rewritten, an inspection waiting for facts, a
    timeout set with extended messages before a Parse, COPY-in with a Sync inside it, and
    notifications whose pids are mapped. Each decision is chosen by op 0x85 (see
    fuzz_relay.c)."""
    def msg(t, body=b''):
        return frame(t, body)

    def cstr(x):
        return x.encode() + b'\0'

    def q(sql):
        return msg(b'Q', cstr(sql))

    def err(code, sev='ERROR'):
        return msg(b'E', b'S' + cstr(sev) + b'V' + cstr(sev) + b'C' + cstr(code) + b'M' + cstr('failed') + b'\0')

    def z(st='I'):
        return msg(b'Z', st.encode())

    def cc(tag):
        return msg(b'C', cstr(tag))

    def row():
        return msg(b'T', b'\0\1' + cstr('set_config') + b'\0' * 6 + b'\0\0\0\x19\xff\xff\xff\xff\xff\xff\0\0') + \
            msg(b'D', b'\0\1\0\0\0\x041000')

    def parse(sql, name=''):
        return msg(b'P', cstr(name) + cstr(sql) + b'\0\0')

    def bind():
        return msg(b'B', b'\0\0' + b'\0\0\0\0\0\0')

    def execute():
        return msg(b'E', b'\0\0\0\0\0')

    def describe():
        return msg(b'D', b'P\0')

    sync = msg(b'S')
    swallowed_set = row() + cc('SELECT 1') + z()

    def ops(*steps):
        out = bytearray()
        for st in steps:
            if isinstance(st, tuple):
                tag, data = st
                out += relay_ops([(tag, data)], 1 << 20)
            else:
                out += st
        return bytes(out)

    def choose(v):
        return bytes([0x85, v])

    RESUME, RESEND, GIVE_UP, RESTORE, BOTH = (bytes([0x80 | k]) for k in range(5))
    alter = q('ALTER TABLE t ADD COLUMN c int')
    retry = 4 | 16                # before (set timeout), after (restore), retryable
    yield 'retry-then-success', bytes([0x0f]) + ops(
        choose(retry), ('C', alter), ('S', swallowed_set), ('S', err('55P03') + z()), RESEND,
        ('S', cc('ROLLBACK') + z('T')), ('S', cc('ALTER TABLE') + z()), ('S', cc('RESET') + z()), BOTH)
    yield 'retry-then-give-up', bytes([0x0f]) + ops(
        choose(retry), ('C', alter), ('S', swallowed_set + err('55P03')), ('S', z()), GIVE_UP,
        ('C', q('SELECT 1')), ('S', cc('RESET') + z() + row() + cc('SELECT 1') + z()))
    yield 'retry-until-it-fails', bytes([0x0b]) + ops(
        choose(retry | 32), ('C', alter), ('S', swallowed_set + err('55P03') + z()), RESEND,
        ('S', cc('ROLLBACK') + z() + err('55P03') + z()), RESEND,
        ('S', cc('ROLLBACK') + z() + err('55P03') + z()), ('S', cc('SELECT 1') + z()))
    yield 'retry-split-notice', bytes([0x0f]) + ops(
        choose(retry), ('C', alter[:7]), ('C', alter[7:]), ('S', swallowed_set[:9]),
        ('S', swallowed_set[9:] + msg(b'N', b'SNOTICE\0\0')[:6]), ('S', msg(b'N', b'SNOTICE\0\0')[6:]),
        ('S', err('55P03')[:3]), ('S', err('55P03')[3:] + z()), GIVE_UP, BOTH)
    yield 'deny-query', bytes([0x05]) + ops(
        choose(3), ('C', q('DROP TABLE t; SELECT 1')), ('S', err('P0001') + z()),
        choose(3 | 8), ('C', q('DROP TABLE t')), ('S', err('42601') + z()),
        choose(3 | 8), ('C', q('DROP TABLE u')), ('S', err('P0001') + z('E')))
    yield 'deny-parse', bytes([0x05]) + ops(
        choose(3), ('C', parse('DROP TABLE t') + bind() + describe() + execute() + sync),
        ('S', err('42601') + z('T')), choose(3),
        ('C', parse('DROP TABLE u', 's1') + sync), ('S', err('42601') + z('E')))
    yield 'wait-for-facts', bytes([0x01]) + ops(
        choose(6), ('C', q('CREATE INDEX i ON big (c)') + q('SELECT 2')), BOTH, choose(0), RESUME,
        ('S', cc('CREATE INDEX') + z() + row() + cc('SELECT 1') + z()))
    yield 'extended-before', bytes([0x1f]) + ops(
        choose(5), ('C', parse('ALTER TABLE t ADD COLUMN d int') + bind() + execute() + sync),
        ('S', msg(b'1') + msg(b'2') + cc('SELECT 1') + msg(b'3') + msg(b'3') + z()),
        ('S', msg(b'1') + msg(b'2') + cc('ALTER TABLE') + z()), ('S', cc('RESET') + z()),
        ('C', msg(b'X')))
    yield 'copy-in-sync', bytes([0x04]) + ops(
        ('C', q('COPY t FROM STDIN')), ('S', msg(b'G', b'\0\0\1\0\0')),
        ('C', msg(b'd', b'1\n') + sync + msg(b'd', b'2\n') + msg(b'c')),
        ('S', cc('COPY 2') + z()), ('C', parse('SELECT 1') + bind() + execute() + sync),
        ('S', msg(b'1') + msg(b'2') + msg(b'D', b'\0\1\0\0\0\1' + b'1') + cc('SELECT 1') + z()))
    yield 'copy-in-extended', bytes([0x04]) + ops(
        ('C', parse('COPY t FROM STDIN') + bind() + execute() + sync),
        ('S', msg(b'1') + msg(b'2') + msg(b'G', b'\0\0\0')),
        ('C', msg(b'd', b'x') + sync + msg(b'f', cstr('stop'))),
        ('S', err('57014') + z()))
    notify = msg(b'A', b'\0\0\x30\x39' + cstr('chan') + cstr('payload'))
    yield 'notify-mapped', bytes([0x06]) + ops(
        ('C', q('LISTEN chan')), ('S', cc('LISTEN') + z()), ('S', notify[:7]), ('S', notify[7:]),
        ('S', msg(b'A', b'\0\0\x30\x38' + cstr('c') + cstr(''))), ('C', q('SELECT 1')),
        ('S', row() + cc('SELECT 1') + notify + z()))
    yield 'pipeline-error', bytes([0x04]) + ops(
        ('C', (parse('SELECT 1/0') + bind() + execute() + sync) * 2 + parse('SELECT 1') + msg(b'H')),
        ('S', msg(b'1') + msg(b'2') + err('22012') + z()), ('S', msg(b'1') + msg(b'2') + err('22012') + z()),
        ('S', msg(b'1')), ('C', bind() + execute() + sync), ('S', msg(b'2') + cc('SELECT 1') + z()))


class SeedWriter:
    def __init__(self, outdir):
        self.outdir = outdir
        self.counts = {}

    def add(self, target, data, max_len=None):
        if max_len is not None and len(data) > max_len:
            data = data[:max_len]
        d = os.path.join(self.outdir, target)
        os.makedirs(d, exist_ok=True)
        name = hashlib.sha1(data).hexdigest()
        p = os.path.join(d, name)
        if not os.path.exists(p):
            with open(p, 'wb') as f:
                f.write(data)
            self.counts[target] = self.counts.get(target, 0) + 1


def write_seeds(capdir, outdir, passwords):
    w = SeedWriter(outdir)
    for name in sorted(os.listdir(capdir)):
        if not name.endswith('.cap'):
            continue
        conv = Conversation(read_capture(os.path.join(capdir, name)))
        for pkt in conv.initial:
            w.add('fuzz_pgw_startup', pkt)
        # Header walks: a cap choice byte, then the messages of one direction.
        cstream = b''.join(frame(t, b) for t, b in conv.client)
        sstream = b''.join(frame(t, b) for t, b in conv.server)
        for i in range(0, len(cstream), 3000):
            w.add('fuzz_pgw_header', bytes([5]) + cstream[i:i + 3000])
        for i in range(0, min(len(sstream), 30000), 3000):
            w.add('fuzz_pgw_header', bytes([3]) + sstream[i:i + 3000])
        for t, body in conv.server:
            if t in (b'E', b'N'):
                w.add('fuzz_pgw_error', body)
            if t == b'R' and len(body) >= 4 and struct.unpack('>I', body[:4])[0] == 10:
                w.add('fuzz_pgw_sasl', body)
        for seed in scram_seeds(conv, passwords):
            w.add('fuzz_scram', seed)
        for sql in sql_texts(conv):
            w.add('fuzz_statement', sql, 8192)
            w.add('fuzz_policy', sql, 8192)
        # Plain relaying, and with inspection, pid mapping, the ready callback, retries and
        # strict server framing on; long conversations in several windows.
        for window in conv.steady_windows(40):
            ops = relay_ops(window, 6000)
            w.add('fuzz_relay', bytes([0x00]) + ops)
            w.add('fuzz_relay', bytes([0x4f]) + ops)
    for _, seed in relay_scenarios():
        w.add('fuzz_relay', seed)
        w.add('fuzz_relay', bytes([seed[0] | 0x40]) + seed[1:])
    return w.counts


# ------------------------------------------------------------------------- the collection


def run(cmd, timeout=300, check=True, **kw):
    kw.setdefault('capture_output', True)
    kw.setdefault('text', True)
    p = subprocess.run(cmd, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise RuntimeError(f'{cmd!r} exited {p.returncode}\n{p.stdout}\n{p.stderr}')
    return p


def as_postgres(cmd):
    return ['runuser', '-u', 'postgres', '--'] + cmd if IS_ROOT else cmd


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


HBA = """\
local all all                trust
host  all postgres 127.0.0.1/32 trust
host  all fuzz_trust 127.0.0.1/32 trust
host  all fuzz_md5 127.0.0.1/32 md5
host  all fuzz_clear 127.0.0.1/32 password
host  all all 127.0.0.1/32 scram-sha-256
"""

PASSWORDS = {'fuzz_scram': 'scram_pw', 'fuzz_md5': 'md5_pw', 'fuzz_clear': 'clear_pw',
             'fuzz_uni': 'caf\u00e9\u00a0\ufb01x'}

SETUP = """
SET password_encryption = 'scram-sha-256';
CREATE ROLE fuzz_scram LOGIN SUPERUSER PASSWORD 'scram_pw';
CREATE ROLE fuzz_uni LOGIN SUPERUSER PASSWORD 'caf\u00e9\u00a0\ufb01x';
CREATE ROLE fuzz_trust LOGIN SUPERUSER;
CREATE ROLE fuzz_clear LOGIN SUPERUSER PASSWORD 'clear_pw';
SET password_encryption = 'md5';
CREATE ROLE fuzz_md5 LOGIN SUPERUSER PASSWORD 'md5_pw';
CREATE DATABASE fuzzdb;
"""


class Cluster:
    def __init__(self, base):
        self.dir = os.path.join(base, 'pg')
        os.makedirs(self.dir)
        if IS_ROOT:
            shutil.chown(self.dir, 'postgres', 'postgres')
        self.data = os.path.join(self.dir, 'data')
        self.port = free_port()

    def start(self):
        run(as_postgres([os.path.join(PGBIN, 'initdb'), '-D', self.data, '-U', 'postgres',
                         '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync']))
        with open(os.path.join(self.data, 'postgresql.conf'), 'a') as f:
            f.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                    f"unix_socket_directories = '{self.dir}'\nfsync = off\nssl = off\n")
        with open(os.path.join(self.data, 'pg_hba.conf'), 'w') as f:
            f.write(HBA)
        run(as_postgres([os.path.join(PGBIN, 'pg_ctl'), '-D', self.data, '-l',
                         os.path.join(self.dir, 'log'), '-w', 'start']))
        run([os.path.join(PGBIN, 'psql'), '-X', '-q', '-h', self.dir, '-p', str(self.port),
             '-U', 'postgres', '-d', 'postgres', '-v', 'ON_ERROR_STOP=1'], input=SETUP)
        return self

    def stop(self):
        run(as_postgres([os.path.join(PGBIN, 'pg_ctl'), '-D', self.data, '-m', 'immediate',
                         '-w', 'stop']), check=False)


def lua_cases():
    """The SQL of every case in tests/lua/*.sql (one migration each)."""
    d = os.path.join(REPO, 'tests', 'lua')
    for name in sorted(os.listdir(d)):
        if not name.endswith('.sql'):
            continue
        cur = None
        with open(os.path.join(d, name)) as f:
            for line in f:
                if re.match(r'--\s*case:', line.strip()):
                    if cur:
                        yield cur
                    cur = ''
                elif cur is not None:
                    cur += line
        if cur:
            yield cur


def psycopg2_workload(port):
    import psycopg2
    import psycopg2.extensions
    import select

    def connect(user, **kw):
        return psycopg2.connect(host='127.0.0.1', port=port, dbname='fuzzdb', user=user,
                                password=PASSWORDS.get(user), sslmode='disable', **kw)

    c = connect('fuzz_scram', application_name='fuzz psycopg2')
    c.autocommit = True
    cur = c.cursor()
    cur.execute("DROP TABLE IF EXISTS py_items; CREATE TABLE py_items (id serial PRIMARY KEY, "
                "name text NOT NULL, data bytea, at timestamptz DEFAULT now())")
    cur.executemany("INSERT INTO py_items (name, data) VALUES (%s, %s)",
                    [(f'item {i}', psycopg2.Binary(bytes(range(i % 256)))) for i in range(40)])
    cur.execute("SELECT * FROM py_items WHERE id > %s ORDER BY id", (5,))
    cur.fetchall()
    cur.execute("DO $$BEGIN RAISE NOTICE 'a notice from %', current_user; "
                "RAISE WARNING 'and a warning'; END$$")
    for bad in ("SELECT 1/0", "SELECT * FROM no_such_table", "ALTER TABLE py_items ADD COLUMN id int",
                "SELEC 1", "CREATE INDEX ON py_items (no_such_column)"):
        try:
            cur.execute(bad)
        except psycopg2.Error:
            pass
    import io
    cur.copy_expert("COPY py_items (name) FROM STDIN", io.StringIO(''.join(f'copied {i}\n' for i in range(200))))
    cur.copy_expert("COPY (SELECT * FROM py_items) TO STDOUT WITH (FORMAT csv, HEADER)", io.StringIO())
    try:
        cur.copy_expert("COPY py_items (id) FROM STDIN", io.StringIO('x\n'))
    except psycopg2.Error:
        pass
    cur.execute("SELECT repeat('x', 100000), generate_series(1, 3)")
    cur.fetchall()
    # Transactions, savepoints, a server-side cursor (DECLARE/FETCH).
    c.autocommit = False
    cur.execute("SAVEPOINT a")
    cur.execute("ALTER TABLE py_items ADD COLUMN note text")
    try:
        cur.execute("ALTER TABLE py_items ADD COLUMN note text")
    except psycopg2.Error:
        cur.execute("ROLLBACK TO SAVEPOINT a")
    cur.execute("RELEASE SAVEPOINT a")
    named = c.cursor('py_cursor')
    named.itersize = 7
    named.execute("SELECT id, name FROM py_items ORDER BY id")
    for _ in named:
        pass
    named.close()
    c.commit()
    # Large objects: libpq's lo_* functions speak FunctionCall ('F').
    lo = c.lobject(0, 'wb')
    lo.write(b'large object bytes ' * 500)
    oid = lo.oid
    lo.close()
    lo = c.lobject(oid, 'rb')
    lo.read()
    lo.close()
    c.lobject(oid).unlink()
    c.commit()
    c.autocommit = True
    # LISTEN/NOTIFY: NotificationResponse arrives between queries.
    cur.execute("LISTEN fuzz_channel")
    other = connect('fuzz_md5')
    other.autocommit = True
    other.cursor().execute("NOTIFY fuzz_channel, 'hello from md5'")
    other.cursor().execute("SELECT pg_notify('fuzz_channel', repeat('n', 300))")
    select.select([c], [], [], 2)
    c.poll()
    cur.execute("SET lock_timeout = '2s'; SHOW lock_timeout; RESET lock_timeout")
    # A cancel: a CancelRequest on a connection of its own.
    def cancel_soon():
        time.sleep(0.5)
        c.cancel()
    threading.Thread(target=cancel_soon).start()
    try:
        cur.execute("SELECT pg_sleep(5)")
    except psycopg2.Error:
        pass
    # The rule library's cases, each as one Query (several statements in one text).
    for sql in lua_cases():
        try:
            cur.execute("BEGIN")
            cur.execute(sql)
        except psycopg2.Error:
            pass
        finally:
            cur.execute("ROLLBACK")
    other.close()
    c.close()
    for user in ('fuzz_clear', 'fuzz_trust', 'fuzz_uni'):
        x = connect(user)
        x.cursor().execute("SELECT current_user, version()")
        x.close()


def collect(keep=False):
    base = tempfile.mkdtemp(prefix='ddlg-fuzz-capture-')
    if IS_ROOT:
        shutil.chown(base, 'postgres', 'postgres')
    capdir = os.path.join(base, 'captures')
    cluster = Cluster(base).start()
    # The tee runs in a process of its own: psycopg2 holds the GIL in some calls (cancel),
    # which would stop a tee thread relaying the very bytes the call waits for.
    port = free_port()
    tee = subprocess.Popen([sys.executable, os.path.abspath(__file__), 'tee', str(port),
                            f'127.0.0.1:{cluster.port}', capdir], stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    env = dict(os.environ, PGHOST='127.0.0.1', PGPORT=str(port), PGDATABASE='fuzzdb')
    try:
        # psql: the workload script, then the rule library's cases one file at a time.
        psql = [os.path.join(PGBIN, 'psql'), '-X', '-v', 'ON_ERROR_STOP=0']
        run(psql + ['-U', 'fuzz_scram', '-f', os.path.join(HERE, 'clients', 'workload.sql')],
            env=dict(env, PGPASSWORD=PASSWORDS['fuzz_scram'], PGAPPNAME='fuzz psql'), check=False)
        lua_dir = os.path.join(REPO, 'tests', 'lua')
        for name in sorted(os.listdir(lua_dir))[:40:3]:
            if name.endswith('.sql'):
                run(psql + ['-U', 'fuzz_md5', '-1', '-f', os.path.join(lua_dir, name)],
                    env=dict(env, PGPASSWORD=PASSWORDS['fuzz_md5']), check=False)
        print('capture: psql done', file=sys.stderr)
        psycopg2_workload(port)
        print('capture: psycopg2 done', file=sys.stderr)
        jdir = os.path.join(base, 'jdbc')
        os.makedirs(jdir)
        run(['javac', '-cp', JDBC_JAR, '-d', jdir, os.path.join(HERE, 'clients', 'Traffic.java')])
        p = run(['java', '-cp', jdir + ':' + JDBC_JAR, 'Traffic',
                 f'jdbc:postgresql://127.0.0.1:{port}/fuzzdb?sslmode=disable', 'fuzz_scram',
                 PASSWORDS['fuzz_scram'], os.path.join(REPO, 'tests', 'lua')], check=False)
        print('capture: pgjdbc done' + ('' if p.returncode == 0 else f' (exit {p.returncode}: {p.stdout[-500:]} {p.stderr[-2000:]})'),
              file=sys.stderr)
        if os.path.isdir(NODE_MODULES):
            p = run(['node', os.path.join(HERE, 'clients', 'traffic.js')], check=False,
                    env=dict(env, NODE_PATH=NODE_MODULES, PGUSER='fuzz_scram',
                             PGPASSWORD=PASSWORDS['fuzz_scram']))
            print('capture: node-postgres done' + ('' if p.returncode == 0 else f' (exit {p.returncode}: {p.stderr[-2000:]})'),
                  file=sys.stderr)
        else:
            print(f'capture: no {NODE_MODULES} (npm install there): node-postgres skipped', file=sys.stderr)
        pipeline_c = os.path.join(REPO, 'tests', 'integration', 'c', 'pipeline.c')
        if os.path.exists(pipeline_c):
            exe = os.path.join(base, 'pipeline')
            flags = run(['pkg-config', '--cflags', '--libs', 'libpq']).stdout.split()
            run(['cc', '-O1', '-o', exe, pipeline_c] + flags)
            run([exe, f'host=127.0.0.1 port={port} dbname=fuzzdb user=fuzz_trust sslmode=disable', '300'],
                check=False)
            print('capture: libpq pipeline done', file=sys.stderr)
        time.sleep(1)
    finally:
        tee.terminate()
        tee.wait()
        cluster.stop()
    out = os.path.join(HERE, 'work', 'seeds')
    shutil.rmtree(out, ignore_errors=True)
    counts = write_seeds(capdir, out, list(PASSWORDS.values()))
    ncap = len([n for n in os.listdir(capdir) if n.endswith('.cap')])
    print(f'capture: {ncap} connections captured in {capdir}', file=sys.stderr)
    for t in sorted(counts):
        print(f'capture: {counts[t]:5d} seeds for {t}', file=sys.stderr)
    if not keep:
        shutil.rmtree(base, ignore_errors=True)
    else:
        print(f'capture: kept {base}', file=sys.stderr)


def main(argv):
    if len(argv) >= 2 and argv[1] == 'tee' and len(argv) == 5:
        host, port = argv[3].rsplit(':', 1)
        tee = Tee(int(argv[2]), (host, int(port)), argv[4]).start()
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
        print(f'capture: listening on 127.0.0.1:{tee.port}', file=sys.stderr)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            tee.stop()
        return 0
    if len(argv) >= 2 and argv[1] == 'collect':
        collect(keep='--keep' in argv)
        return 0
    if len(argv) == 4 and argv[1] == 'seeds':
        counts = write_seeds(argv[2], argv[3], list(PASSWORDS.values()))
        for t in sorted(counts):
            print(f'capture: {counts[t]:5d} seeds for {t}', file=sys.stderr)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv))

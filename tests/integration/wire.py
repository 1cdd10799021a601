"""A small raw PostgreSQL v3 wire-protocol client for tests that need exact bytes: malformed
input, SQLSTATEs of login-time errors, named portals, and byte-for-byte comparison of what a
proxy returns against what PostgreSQL itself returns."""

import base64
import hashlib
import hmac
import os
import re
import socket
import ssl
import struct
import time

PROTO_V3 = 196608            # 3.0
PROTO_V2 = 131072            # 2.0
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102


# --- frontend messages ------------------------------------------------------------------------

def untyped(code, payload=b''):
    return struct.pack('!ii', 8 + len(payload), code) + payload


def startup(params, version=PROTO_V3):
    body = b''.join(k.encode() + b'\0' + v.encode() + b'\0' for k, v in params.items()) + b'\0'
    return untyped(version, body)


def ssl_request():
    return untyped(SSL_REQUEST)


def gssenc_request():
    return untyped(GSSENC_REQUEST)


def cancel_request(pid, secret):
    return untyped(CANCEL_REQUEST, struct.pack('!ii', pid, secret))


def msg(kind, payload=b''):
    return kind + struct.pack('!i', 4 + len(payload)) + payload


def cstr(s):
    return (s.encode() if isinstance(s, str) else s) + b'\0'


def query(sql):
    return msg(b'Q', cstr(sql))


def parse(name, sql, oids=()):
    return msg(b'P', cstr(name) + cstr(sql) + struct.pack('!h', len(oids)) +
               b''.join(struct.pack('!i', o) for o in oids))


def bind(portal, stmt, params=(), param_formats=(), result_formats=()):
    out = cstr(portal) + cstr(stmt)
    out += struct.pack('!h', len(param_formats)) + b''.join(struct.pack('!h', f) for f in param_formats)
    out += struct.pack('!h', len(params))
    for p in params:
        if p is None:
            out += struct.pack('!i', -1)
        else:
            p = p.encode() if isinstance(p, str) else p
            out += struct.pack('!i', len(p)) + p
    out += struct.pack('!h', len(result_formats)) + b''.join(struct.pack('!h', f) for f in result_formats)
    return msg(b'B', out)


def describe(kind, name):
    return msg(b'D', kind + cstr(name))


def execute(portal='', max_rows=0):
    return msg(b'E', cstr(portal) + struct.pack('!i', max_rows))


def close(kind, name):
    return msg(b'C', kind + cstr(name))


def sync():
    return msg(b'S')


def flush():
    return msg(b'H')


def copy_data(data):
    return msg(b'd', data)


def copy_done():
    return msg(b'c')


def terminate():
    return msg(b'X')


# --- backend messages -------------------------------------------------------------------------

class Message:
    __slots__ = ('kind', 'body')

    def __init__(self, kind, body):
        self.kind, self.body = kind, body

    def __eq__(self, other):
        return (self.kind, self.body) == (other.kind, other.body)

    def __repr__(self):
        if self.kind in (b'E', b'N'):
            f = self.fields()
            return f'{self.kind.decode()}({f.get("S")} {f.get("C")}: {f.get("M")})'
        body = self.body if len(self.body) <= 60 else self.body[:60] + b'...'
        return f'{self.kind.decode()}({body!r})'

    def fields(self):
        """ErrorResponse/NoticeResponse fields as {code letter: text}."""
        out = {}
        for part in self.body.split(b'\0'):
            if part:
                out[chr(part[0])] = part[1:].decode(errors='replace')
        return out

    @property
    def sqlstate(self):
        return self.fields().get('C') if self.kind in (b'E', b'N') else None

    def int32(self, offset=0):
        return struct.unpack_from('!i', self.body, offset)[0]


class Closed(Exception):
    """The peer closed the connection."""


class ProtocolError(Exception):
    pass


class Conn:
    def __init__(self, host, port, timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b''
        self.key = None          # (pid, secret) from BackendKeyData
        self.params = {}         # ParameterStatus

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def settimeout(self, t):
        self.sock.settimeout(t)

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, n):
        while len(self.buf) < n:
            try:
                chunk = self.sock.recv(max(65536, n - len(self.buf)))
            except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
                chunk = b''
            if not chunk:
                raise Closed(f'connection closed (had {len(self.buf)} of {n} bytes)')
            self.buf += chunk

    def recv_byte(self):
        self._fill(1)
        b, self.buf = self.buf[:1], self.buf[1:]
        return b

    def recv(self):
        self._fill(5)
        kind = self.buf[:1]
        length = struct.unpack_from('!i', self.buf, 1)[0]
        if length < 4:
            raise ProtocolError(f'bad length {length} for message {kind!r}')
        self._fill(1 + length)
        body = self.buf[5:1 + length]
        self.buf = self.buf[1 + length:]
        return Message(kind, body)

    def recv_until(self, pred):
        out = []
        while True:
            m = self.recv()
            out.append(m)
            if pred(m):
                return out

    def recv_ready(self, count=1):
        """Messages up to and including the `count`-th ReadyForQuery."""
        out = []
        for _ in range(count):
            out += self.recv_until(lambda m: m.kind == b'Z')
        return out

    def wait_closed(self, timeout=5.0):
        """True if the peer closes within `timeout` (data still arriving is read and dropped)."""
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if not self.sock.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            return True
        except socket.timeout:
            return False
        return False

    def start_tls(self, cafile=None):
        ctx = ssl.create_default_context(cafile=cafile) if cafile else ssl._create_unverified_context()
        self.sock = ctx.wrap_socket(self.sock, server_hostname='127.0.0.1' if cafile else None)

    # --- login ----------------------------------------------------------------------------------
    def login(self, user, database, password=None, **params):
        """Sends a StartupMessage and authenticates (trust, cleartext, md5, SCRAM-SHA-256).
        Returns the messages up to ReadyForQuery. Raises LoginError on an ErrorResponse."""
        p = {'user': user, 'database': database}
        p.update(params)
        self.send(startup(p))
        return self.finish_login(user, password)

    def finish_login(self, user, password=None):
        msgs = []
        while True:
            m = self.recv()
            msgs.append(m)
            if m.kind == b'E':
                raise LoginError(m)
            if m.kind == b'R':
                code = m.int32()
                if code == 0:
                    continue
                if code == 3:
                    self.send(msg(b'p', cstr(password or '')))
                elif code == 5:
                    salt = m.body[4:8]
                    inner = hashlib.md5(((password or '') + user).encode()).hexdigest()
                    self.send(msg(b'p', cstr('md5' + hashlib.md5(inner.encode() + salt).hexdigest())))
                elif code == 10:
                    mechs = [x.decode() for x in m.body[4:].split(b'\0') if x]
                    msgs += self._scram(password or '', mechs)
                else:
                    raise ProtocolError(f'unsupported auth request {code}')
            elif m.kind == b'K':
                self.key = struct.unpack('!ii', m.body[:8])
            elif m.kind == b'S':
                k, v = m.body.split(b'\0')[:2]
                self.params[k.decode()] = v.decode()
            elif m.kind == b'Z':
                return msgs

    def _scram(self, password, mechs):
        if 'SCRAM-SHA-256' not in mechs:
            raise ProtocolError(f'no SCRAM-SHA-256 in {mechs}')
        nonce = base64.b64encode(os.urandom(18)).decode()
        first_bare = f'n=,r={nonce}'
        data = ('n,,' + first_bare).encode()
        self.send(msg(b'p', cstr('SCRAM-SHA-256') + struct.pack('!i', len(data)) + data))
        m = self.recv()
        if m.kind == b'E':
            raise LoginError(m)
        if m.kind != b'R' or m.int32() != 11:
            raise ProtocolError(f'expected SASLContinue, got {m!r}')
        server_first = m.body[4:].decode()
        attrs = dict(kv.split('=', 1) for kv in server_first.split(','))
        if not attrs['r'].startswith(nonce):
            raise ProtocolError('server nonce does not extend ours')
        salted = hashlib.pbkdf2_hmac('sha256', password.encode(), base64.b64decode(attrs['s']),
                                     int(attrs['i']))
        client_key = hmac.new(salted, b'Client Key', 'sha256').digest()
        stored_key = hashlib.sha256(client_key).digest()
        final_wo_proof = f'c=biws,r={attrs["r"]}'
        auth_message = f'{first_bare},{server_first},{final_wo_proof}'.encode()
        sig = hmac.new(stored_key, auth_message, 'sha256').digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        self.send(msg(b'p', f'{final_wo_proof},p={base64.b64encode(proof).decode()}'.encode()))
        m = self.recv()
        if m.kind == b'E':
            raise LoginError(m)
        if m.kind != b'R' or m.int32() != 12:
            raise ProtocolError(f'expected SASLFinal, got {m!r}')
        return [m]

    # --- convenience ----------------------------------------------------------------------------
    def simple(self, sql):
        """Runs a simple Query; returns messages up to ReadyForQuery."""
        self.send(query(sql))
        return self.recv_ready()

    def rows(self, sql):
        """Runs a simple Query and returns its DataRows as lists of str/None; raises on error."""
        out = []
        for m in self.simple(sql):
            if m.kind == b'E':
                raise QueryError(m)
            if m.kind == b'D':
                out.append(decode_row(m.body))
        return out


class LoginError(Exception):
    def __init__(self, m):
        super().__init__(repr(m))
        self.message = m
        self.sqlstate = m.sqlstate
        self.fields = m.fields()


class QueryError(LoginError):
    pass


def decode_row(body, binary=False):
    n = struct.unpack_from('!h', body)[0]
    off, row = 2, []
    for _ in range(n):
        ln = struct.unpack_from('!i', body, off)[0]
        off += 4
        if ln < 0:
            row.append(None)
        else:
            v = body[off:off + ln]
            row.append(v if binary else v.decode())
            off += ln
    return row


def first_error(msgs):
    for m in msgs:
        if m.kind == b'E':
            return m
    return None


def normalize(msgs):
    """Makes a transcript comparable across sessions: drops BackendKeyData, zeroes the sender
    pid of NotificationResponse (the server backend's pid) and the table OIDs in RowDescription
    and the pg_temp_<n> schema names in errors (each session's temporary tables have their
    own)."""
    out = []
    for m in msgs:
        if m.kind == b'K':
            continue
        if m.kind == b'A':
            m = Message(b'A', b'\0\0\0\0' + m.body[4:])
        elif m.kind in (b'E', b'N'):
            # the schema of a temporary table is named after the backend slot: pg_temp_<n>
            m = Message(m.kind, re.sub(rb'(^|\0)s(pg_temp|pg_toast_temp)_\d+\0', rb'\1s\2_N\0', m.body))
        elif m.kind == b'T':
            body = bytearray(m.body)
            off = 2
            for _ in range(struct.unpack_from('!h', body)[0]):
                off = body.index(b'\0', off) + 1
                body[off:off + 4] = b'\0\0\0\0'
                off += 18
            m = Message(b'T', bytes(body))
        out.append(m)
    return out

"""The audit log: a real migration produces session, statement and transaction records (and a
reload record), each chained by SHA-256; `ddlguard audit verify` detects an edited, deleted or
reordered record; a password never reaches the file; an unwritable log denies schema changes
(audit_failure = closed) or lets them through (open)."""

import json
import os
import signal

from harness import ProxyTestCase, USERS, ddlguard_bin, proxy_only, run, subdir, wait_for

POLICY = ('function on_statement(stmt)\n'
          '  if stmt.tag == "DROP TABLE" then return deny{ rule = "no-drop", message = "no drops" } end\n'
          '  if stmt.tag == "CREATE INDEX" and not stmt.concurrently then return warn("blocks writes") end\n'
          'end\n')


@proxy_only
class TestAudit(ProxyTestCase):
    class_proxy = False

    def guard(self, name, **settings):
        pol = os.path.join(subdir('policies'), 'audit.lua')
        with open(pol, 'w') as f:
            f.write(POLICY)
        path = os.path.join(subdir('audit'), name)
        if os.path.exists(path):
            os.unlink(path)
        s = {'server_tls_sslmode': 'disable', 'policy_files': pol, 'audit_log': path}
        s.update(settings)
        return self.start_proxy(s), path

    def records(self, path):
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]

    def verify(self, path):
        return run([ddlguard_bin(), 'audit', 'verify', path], check=False)

    def migrate(self, p):
        owner = USERS['trust'][0]
        self.pg.psql_admin(f'DROP TABLE IF EXISTS audit_t CASCADE; CREATE TABLE audit_t (id int); '
                           f'ALTER TABLE audit_t OWNER TO {owner}; ALTER ROLE {owner} CREATEROLE')
        return self.psql(self.conninfo(proxy=p), input=(
            'BEGIN;\n'
            'ALTER TABLE audit_t ADD COLUMN v int;\n'
            'CREATE INDEX audit_t_v ON audit_t (v);\n'
            'COMMIT;\n'
            'INSERT INTO audit_t VALUES (1, 1), (2, 2);\n'
            "CREATE ROLE audit_role PASSWORD 'Sup3r-Secret-pw';\n"
            "ALTER ROLE audit_role PASSWORD 'An0ther-Secret';\n"
            "DO $$BEGIN EXECUTE 'ALTER ROLE audit_role PASSWORD ''Th1rd-Secret'' '; END$$;\n"
            'DROP ROLE audit_role;\n'
            'BEGIN;\n'
            'ALTER TABLE audit_t ADD COLUMN w int;\n'
            'ROLLBACK;\n'
            'DROP TABLE audit_t;\n'), env={})

    def test_a_migration_writes_every_event(self):
        p, path = self.guard('full.jsonl')
        r = self.migrate(p)
        self.assertIn('no drops', r.stderr)
        r = self.psql(self.conninfo(proxy=p), '-c', 'ALTER ROLE audit_role PASSWORD Fourth-Secret', env={})
        self.assertIn('syntax error', r.stderr)
        p.signal(signal.SIGHUP)
        wait_for(lambda: any(x['event'] == 'policy_reload' for x in self.records(path)), 5, what='reload record')
        recs = self.records(path)
        events = {x['event'] for x in recs}
        self.assertTrue({'session_start', 'session_end', 'statement', 'transaction', 'policy_reload'} <= events, events)
        stmts = [x for x in recs if x['event'] == 'statement']
        by_tag = {}
        for x in stmts:
            by_tag.setdefault(x['command_tag'], []).append(x)
        idx = by_tag['CREATE INDEX'][0]
        self.assertEqual((idx['decision'], idx['outcome'], idx['objects']), ('warn', 'ok', 'audit_t,audit_t_v'))
        self.assertEqual(idx['reason'], 'blocks writes')
        drop = by_tag['DROP TABLE'][0]
        self.assertEqual((drop['decision'], drop['rule'], drop['outcome'], drop['sqlstate']),
                         ('deny', 'no-drop', 'denied', '42501'))
        for x in stmts:
            for k in ('user', 'database', 'application_name', 'client_addr', 'tls', 'environment', 'strict_id',
                      'fingerprint', 'duration_ms', 'retries', 'seq', 'prev_hash', 'hash'):
                self.assertIn(k, x)
        txs = [(x['outcome'], x['count']) for x in recs if x['event'] == 'transaction']
        self.assertIn(('committed', 2), txs)
        self.assertIn(('rolled back', 1), txs)
        with open(path) as f:
            text = f.read()
        self.assertNotIn('Sup3r-Secret', text)
        self.assertNotIn('An0ther-Secret', text)
        self.assertNotIn('Th1rd-Secret', text)       # inside a DO block's string
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o640)   # not world-readable
        self.assertIn(('DO', 'DO $1'), [(x['command_tag'], x['statement']) for x in stmts])
        log = p.log_text()
        for secret in ('Sup3r-Secret', 'An0ther-Secret', 'Th1rd-Secret', 'Fourth-Secret'):
            self.assertNotIn(secret, log)
        self.assertIn('message withheld', log)       # the unquoted one does not parse
        self.assertIn('PASSWORD $1', text)
        v = self.verify(path)
        self.assertEqual(v.returncode, 0, v.stdout)
        self.assertIn(f'OK: {len(recs)} records', v.stdout)
        self.assertEqual([x['seq'] for x in recs], list(range(1, len(recs) + 1)))

    def tampered(self, path, lines):
        out = path + '.tampered'
        with open(out, 'w') as f:
            f.writelines(lines)
        return self.verify(out)

    def test_verify_detects_edit_delete_and_reorder(self):
        p, path = self.guard('tamper.jsonl')
        self.migrate(p)
        with open(path) as f:
            lines = f.readlines()
        self.assertGreater(len(lines), 6)
        edited = list(lines)
        edited[3] = edited[3].replace('"tls":false', '"tls":true')
        self.assertNotEqual(edited[3], lines[3])
        r = self.tampered(path, edited)
        self.assertEqual(r.returncode, 1)
        self.assertIn('BROKEN at record 4', r.stdout)
        self.assertIn('edited', r.stdout)
        r = self.tampered(path, lines[:2] + lines[3:])
        self.assertEqual(r.returncode, 1)
        self.assertIn('BROKEN at record 3', r.stdout)
        r = self.tampered(path, lines[:2] + [lines[3], lines[2]] + lines[4:])
        self.assertEqual(r.returncode, 1)
        self.assertIn('BROKEN at record 3', r.stdout)
        r = self.tampered(path, lines[:-1])   # truncation at the end is the one thing a chain cannot see
        self.assertEqual(r.returncode, 0)

    def test_chain_continues_across_restart_and_reopen(self):
        p, path = self.guard('reopen.jsonl')
        self.psql(self.conninfo(proxy=p), '-c', 'SELECT 1')
        p.stop()
        p2 = self.start_proxy({'server_tls_sslmode': 'disable', 'audit_log': path})
        self.psql(self.conninfo(proxy=p2), '-c', 'SELECT 1')
        p2.stop()
        v = self.verify(path)
        self.assertEqual(v.returncode, 0, v.stdout)
        recs = self.records(path)
        self.assertEqual([x['seq'] for x in recs], list(range(1, len(recs) + 1)))

    def test_unwritable_log_denies_schema_changes(self):
        p = self.start_proxy({'server_tls_sslmode': 'disable', 'audit_log': '/dev/full'})
        r = self.psql(self.conninfo(proxy=p), '-c', 'SELECT 1', '-c', 'CREATE TABLE audit_never (id int)')
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('cannot write its audit log', r.stderr)
        self.assertFalse(self.pg.query("SELECT to_regclass('audit_never') IS NOT NULL")[0][0])
        p2 = self.start_proxy({'server_tls_sslmode': 'disable', 'audit_log': '/dev/full', 'audit_failure': 'open'})
        r = self.psql(self.conninfo(proxy=p2), '-c', 'SELECT 1', '-c', 'CREATE TABLE audit_open_t (id int)')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.pg.psql_admin('DROP TABLE audit_open_t')

    def test_dml_is_audited_only_when_configured(self):
        for setting, expected in (('off', 0), ('on', 1)):
            p, path = self.guard(f'dml_{setting}.jsonl', audit_dml=setting)
            owner = USERS['trust'][0]
            self.pg.psql_admin(f'CREATE TABLE IF NOT EXISTS audit_dml (id int); ALTER TABLE audit_dml OWNER TO {owner}')
            r = self.psql(self.conninfo(proxy=p), '-c', 'INSERT INTO audit_dml VALUES (1), (2)')
            self.assertEqual(r.returncode, 0, r.stderr)
            inserts = [x for x in self.records(path) if x['event'] == 'statement' and x['command_tag'] == 'INSERT']
            self.assertEqual(len(inserts), expected, setting)
            if inserts:
                self.assertEqual((inserts[0]['outcome'], inserts[0]['rows']), ('ok', 2))

"""Lua policies through ddlguard against a real PostgreSQL: deny by poison substitution
(simple and extended protocol, in and out of transactions, pipelines, JDBC batches), warnings
as notices, lock/statement timeouts applied and restored, inline overrides, on_connect,
policy failures (closed and open), the sandbox, reloads, and `ddlguard check` agreeing with
the proxy."""

import os
import signal
import subprocess
import threading
import time

import psycopg2

from harness import (ProxyTestCase, APPDB, USERS, compile_c, compile_java, ddlguard_bin,
                     proxy_only, subdir, wait_for, run)

POLICY = r'''
-- The test suite's policy: one rule per behaviour under test.
see_dml = true

local function touches(stmt, name)
  for _, o in ipairs(stmt.objects) do
    if o.name == name then return o end
  end
end

function on_connect(session)
  if session.application_name == "forbidden-app" then
    return deny{ rule = "no-forbidden-app", message = "this application may not connect" }
  end
end

function on_statement(stmt, session)
  if stmt.tag == "DROP TABLE" then
    return deny{ rule = "no-drop-table", message = "dropping a table breaks the running app",
                 hint = "rename it, and drop it in a later release", override = true }
  end
  if stmt.tag == "TRUNCATE TABLE" then
    return deny{ rule = "no-truncate", sqlstate = "55006", message = "no truncate here" }
  end
  if stmt.tag == "DELETE" and touches(stmt, "guard_items") then
    return deny{ rule = "no-delete", message = "deletes from guard_items are not allowed" }
  end
  if stmt.tag == "CREATE INDEX" and not stmt.concurrently then
    return warn{ rule = "concurrent-index", message = "CREATE INDEX without CONCURRENTLY blocks writes",
                 hint = "use CREATE INDEX CONCURRENTLY" }
  end
  if (stmt.tag == "ALTER TABLE" or stmt.tag == "CREATE INDEX") and touches(stmt, "guard_locked") then
    return set{ lock_timeout = "700ms" }
  end
  if stmt.tag == "ALTER TABLE" then
    local o = stmt.objects[1]
    if o and o.name:sub(1, 6) == "fresh_" and not created_in_session(session, o) then
      return deny{ rule = "fresh-only", message = "only tables created in this session may be altered" }
    end
  end
  if stmt.tag == "COMMENT" and stmt.tree and stmt.tree.node_type == "CommentStmt" then
    return warn{ rule = "tree", message = "comment via tree: " .. tostring(stmt.tree.objtype) }
  end
end
'''


def write_policy(name, text):
    path = os.path.join(subdir('policies'), name)
    with open(path, 'w') as f:
        f.write(text)
    return path


class PolicyCase(ProxyTestCase):
    policy_path = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.policy_path = write_policy('suite.lua', POLICY)
        cls.settings = {'policy_files': cls.policy_path, 'server_tls_sslmode': 'disable'}
        cls.pg.psql_admin('DROP TABLE IF EXISTS guard_items, guard_keep, guard_locked, fresh_old, '
                          'jdbc_batch_a, jdbc_batch_b, guard_multi CASCADE; '
                          'CREATE TABLE guard_items (id int PRIMARY KEY); '
                          'INSERT INTO guard_items SELECT generate_series(1, 10); '
                          'CREATE TABLE guard_keep (id int); CREATE TABLE guard_locked (id int); '
                          'CREATE TABLE fresh_old (id int); '
                          'GRANT CREATE ON SCHEMA public TO PUBLIC; '
                          f'ALTER TABLE guard_items OWNER TO {USERS["trust"][0]}; '
                          f'ALTER TABLE guard_keep OWNER TO {USERS["trust"][0]}; '
                          f'ALTER TABLE guard_locked OWNER TO {USERS["trust"][0]}; '
                          f'ALTER TABLE fresh_old OWNER TO {USERS["trust"][0]}; '
                          'GRANT ALL ON ALL TABLES IN SCHEMA public TO PUBLIC')

    def error_of(self, conn, sql):
        with self.assertRaises(psycopg2.Error) as cm:
            with conn.cursor() as cur:
                cur.execute(sql)
        return cm.exception

    def exists(self, name):
        return self.pg.query(f"SELECT to_regclass('{name}') IS NOT NULL")[0][0]


@proxy_only
class TestDeny(PolicyCase):

    def test_deny_autocommit_psql(self):
        p = self.psql(self.conninfo(), '-c', 'DROP TABLE guard_keep')
        self.assertEqual(p.returncode, 1)
        self.assertIn('ERROR:  dropping a table breaks the running app', p.stderr)
        self.assertIn('DETAIL:  ddlguard rule: no-drop-table', p.stderr)
        self.assertIn('HINT:  rename it, and drop it in a later release', p.stderr)
        self.assertNotIn('CONTEXT', p.stderr)   # the DO block's context is rewritten away
        self.assertTrue(self.exists('guard_keep'))

    def test_names_cannot_forge_log_lines(self):
        # A quoted identifier may hold a newline; ddlguard's log names objects: one event,
        # one line.
        c = self.connect()
        forged = '2026-01-01 00:00:00.000 UTC [1] LOG forged-line'
        e = self.error_of(c, f'DROP TABLE IF EXISTS "x\n{forged}"')
        self.assertEqual(e.pgcode, '42501')
        log = self.proxy.log_text()
        self.assertIn('forged-line', log)
        self.assertFalse(any(l.startswith(forged) for l in log.splitlines()), 'a name started a log line')

    def test_deny_in_transaction_commits_nothing(self):
        c = self.connect(autocommit=False)
        with c.cursor() as cur:
            cur.execute('CREATE TABLE guard_tx_new (id int)')
        e = self.error_of(c, 'DROP TABLE guard_keep')
        self.assertEqual(e.pgcode, '42501')
        self.assertIn('ddlguard rule: no-drop-table', e.diag.message_detail)
        # The server's own transaction failed: the next statement is 25P02, COMMIT rolls back.
        e = self.error_of(c, 'SELECT 1')
        self.assertEqual(e.pgcode, '25P02')
        with c.cursor() as cur:
            cur.execute('COMMIT')
            self.assertEqual(cur.statusmessage, 'ROLLBACK')
        self.assertFalse(self.exists('guard_tx_new'))
        self.assertTrue(self.exists('guard_keep'))

    def test_psql_single_transaction_reports_rollback(self):
        p = self.psql(self.conninfo(), input='BEGIN;\nCREATE TABLE guard_psql_new (id int);\n'
                      'DROP TABLE guard_keep;\nCOMMIT;\n', env={})
        self.assertEqual(p.returncode, 3, p.stderr)   # ON_ERROR_STOP
        self.assertIn('dropping a table breaks the running app', p.stderr)
        self.assertFalse(self.exists('guard_psql_new'))

    def test_deny_second_statement_of_multi_statement_query(self):
        c = self.connect()
        e = self.error_of(c, 'CREATE TABLE guard_multi (id int); DROP TABLE guard_keep; '
                             'CREATE TABLE guard_multi2 (id int)')
        self.assertEqual(e.pgcode, '42501')
        # One implicit transaction: the first statement is rolled back, the third never ran.
        self.assertFalse(self.exists('guard_multi'))
        self.assertFalse(self.exists('guard_multi2'))
        self.assertEqual(self.scalar(c, 'SELECT 7'), 7)

    def test_deny_in_failed_transaction_is_25P02(self):
        c = self.connect(autocommit=False)
        self.error_of(c, 'SELECT 1/0')
        e = self.error_of(c, 'DROP TABLE guard_keep')
        self.assertEqual(e.pgcode, '25P02')
        c.rollback()
        self.assertEqual(self.scalar(c, 'SELECT 1'), 1)

    def test_custom_sqlstate(self):
        c = self.connect()
        e = self.error_of(c, 'TRUNCATE guard_keep')
        self.assertEqual(e.pgcode, '55006')
        self.assertEqual(e.diag.message_primary, 'no truncate here (ddlguard: no-truncate)')
        self.assertEqual(e.diag.message_detail, 'ddlguard rule: no-truncate')

    def test_extended_with_parameters(self):
        out = run([compile_c('guard_ext'), self.conninfo(), 'params']).stdout.splitlines()
        self.assertTrue(out[0].startswith('delete PGRES_FATAL_ERROR 42501 deletes from guard_items are not allowed'),
                        out)
        self.assertIn('ddlguard rule: no-delete', out[0])
        self.assertEqual(out[1], 'status I')
        self.assertEqual(out[2], 'after PGRES_TUPLES_OK - 10')

    def test_extended_in_failed_transaction(self):
        out = run([compile_c('guard_ext'), self.conninfo(), 'failed']).stdout.splitlines()
        self.assertTrue(out[1].startswith('boom PGRES_FATAL_ERROR 22012'), out)
        self.assertTrue(out[2].startswith('delete PGRES_FATAL_ERROR 25P02 current transaction is aborted'), out)
        self.assertTrue(out[3].startswith('commit PGRES_COMMAND_OK'), out)
        self.assertEqual(out[4], 'after PGRES_TUPLES_OK - 10')

    def test_pipeline_with_denied_statement(self):
        out = run([compile_c('guard_ext'), self.conninfo(), 'pipeline']).stdout.splitlines()
        self.assertTrue(out[0].startswith('insert PGRES_COMMAND_OK'), out)
        self.assertTrue(out[1].startswith('delete PGRES_FATAL_ERROR 42501'), out)
        self.assertTrue(out[2].startswith('insert2 PGRES_PIPELINE_ABORTED'), out)
        self.assertTrue(out[3].startswith('sync PGRES_PIPELINE_SYNC'), out)
        # The implicit transaction of the first segment rolled back: its INSERT is gone.
        self.assertEqual(out[4], 'count PGRES_TUPLES_OK - 0', out)
        self.assertTrue(out[5].startswith('sync2 PGRES_PIPELINE_SYNC'), out)

    def test_prepared_denied_then_good(self):
        out = run([compile_c('guard_ext'), self.conninfo(), 'prepared']).stdout.splitlines()
        self.assertTrue(out[0].startswith('prepare PGRES_FATAL_ERROR 42501'), out)
        self.assertTrue(out[1].startswith('prepare2 PGRES_COMMAND_OK'), out)
        self.assertEqual(out[2], 'exec2 PGRES_TUPLES_OK - 9')

    def test_jdbc_batch(self):
        cp = compile_java('GuardBatch')
        url = f'jdbc:postgresql://{self.proxy.host}:{self.proxy.port}/{APPDB}?sslmode=disable'
        role, pw = USERS['scram']
        p = run(['java', '-cp', cp, 'GuardBatch', url, role, pw], timeout=120)
        lines = p.stdout.splitlines()
        self.assertIn('batch failed 42501', lines, p.stdout + p.stderr)
        self.assertIn('rolled back true kept true', lines)
        self.assertIn('warning 01000 CREATE INDEX without CONCURRENTLY blocks writes', lines)
        self.assertTrue(any(l.startswith('delete failed 42501 ERROR: deletes from guard_items') for l in lines),
                        lines)

    def test_unparseable_text_is_denied_like_a_syntax_error(self):
        # No policy can check text the parser rejects (a typo, or a newer server's syntax):
        # fail closed, with the SQLSTATE and message PostgreSQL itself would give.
        c = self.connect()
        e = self.error_of(c, 'DROP TABEL guard_keep')
        self.assertEqual(e.pgcode, '42601')
        self.assertIn('syntax error at or near "TABEL"', e.pgerror)
        self.assertIn('(ddlguard: parse-error)', e.pgerror)
        self.assertIn('unparsed_statements = pass', e.diag.message_hint)
        self.assertIn('deny unparsed text at line 1 column 6', self.proxy.log_text())
        # Nothing of a multi-statement Query with a bad statement runs, as on the server.
        e = self.error_of(c, 'CREATE TABLE guard_unparsed_a (id int); DROP TABEL guard_keep')
        self.assertEqual(e.pgcode, '42601')
        self.assertFalse(self.exists('guard_unparsed_a'))
        # In a transaction block it aborts the transaction; the session goes on.
        c.autocommit = False
        with c.cursor() as cur:
            cur.execute('CREATE TABLE guard_unparsed_b (id int)')
        e = self.error_of(c, 'ALTER TABEL guard_keep ADD COLUMN x int')
        self.assertEqual(e.pgcode, '42601')
        c.rollback()
        c.autocommit = True
        self.assertFalse(self.exists('guard_unparsed_b'))
        with c.cursor() as cur:
            cur.execute('SELECT 1')
            self.assertEqual(cur.fetchone(), (1,))

    def test_unparsed_statements_pass_relays_to_the_server(self):
        p = self.start_proxy(dict(self.settings, unparsed_statements='pass'))
        c = self.connect(proxy=p)
        e = self.error_of(c, 'DROP TABEL guard_keep')
        self.assertEqual(e.pgcode, '42601')   # the server's own syntax error
        self.assertNotIn('ddlguard', e.pgerror)
        self.assertIn('does not parse', p.log_text())

    def test_dml_not_denied_when_allowed(self):
        c = self.connect()
        with c.cursor() as cur:
            cur.execute('DELETE FROM guard_keep WHERE id = 1')
            cur.execute('SELECT count(*) FROM guard_items')
            self.assertEqual(cur.fetchone()[0], 10)


@proxy_only
class TestWarnAndOverride(PolicyCase):

    def test_warning_reaches_psql_and_psycopg2(self):
        p = self.psql(self.conninfo(), '-c', 'CREATE INDEX guard_w1 ON guard_keep (id)', '-c', 'DROP INDEX guard_w1')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('WARNING:  CREATE INDEX without CONCURRENTLY blocks writes', p.stderr)
        self.assertIn('HINT:  use CREATE INDEX CONCURRENTLY', p.stderr)
        c = self.connect()
        with c.cursor() as cur:
            cur.execute('CREATE INDEX guard_w2 ON guard_keep (id)')
            cur.execute('DROP INDEX guard_w2')
        self.assertTrue(any('CREATE INDEX without CONCURRENTLY' in n for n in c.notices), c.notices)

    def test_warning_comes_before_the_servers_own_notice(self):
        # DROP INDEX IF EXISTS of a missing index makes the server send a NOTICE; a policy
        # warning on the same statement must precede it (protocol order).
        path = write_policy('warn_drop.lua', 'function on_statement(s) if s.tag == "DROP INDEX" then '
                            'return warn("first") end end')
        p = self.start_proxy({'policy_files': path, 'server_tls_sslmode': 'disable'})
        c = self.connect(proxy=p)
        with c.cursor() as cur:
            cur.execute('DROP INDEX IF EXISTS guard_no_such_index')
        self.assertEqual(len(c.notices), 2, c.notices)
        self.assertIn('first', c.notices[0])
        self.assertIn('does not exist, skipping', c.notices[1])

    def test_override_comment(self):
        # psql drops a "--" comment that stands before a statement, but sends C-style
        # comments and comments inside the statement: both forms work through psql -f.
        for i, form in enumerate(('/* ddlguard:allow no-drop-table reason="dead since v12" */\nDROP TABLE guard_drop_me{i};\n',
                                  'DROP TABLE guard_drop_me{i} -- ddlguard:allow no-drop-table reason="dead since v12"\n;\n')):
            self.pg.psql_admin(f'CREATE TABLE guard_drop_me{i} (id int); '
                               f'ALTER TABLE guard_drop_me{i} OWNER TO {USERS["trust"][0]}')
            p = self.psql(self.conninfo(), input=form.format(i=i))
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn('rule no-drop-table overridden inline: dead since v12', p.stderr)
            self.assertFalse(self.exists(f'guard_drop_me{i}'))
        # A client that sends the text as written (psycopg2) keeps a leading "--" comment.
        self.pg.psql_admin(f'CREATE TABLE guard_drop_me9 (id int); ALTER TABLE guard_drop_me9 OWNER TO {USERS["trust"][0]}')
        c = self.connect()
        with c.cursor() as cur:
            cur.execute('-- ddlguard:allow no-drop-table reason="psycopg2"\nDROP TABLE guard_drop_me9')
        self.assertFalse(self.exists('guard_drop_me9'))
        self.assertIn('override of no-drop-table', self.proxy.log_text())

    def test_override_inside_string_is_not_an_override(self):
        p = self.psql(self.conninfo(), '-c', "SELECT '-- ddlguard:allow no-drop-table'; DROP TABLE guard_keep")
        self.assertIn('dropping a table breaks', p.stderr)
        self.assertTrue(self.exists('guard_keep'))

    def test_override_not_honoured_for_rules_that_forbid_it(self):
        p = self.psql(self.conninfo(), input='/* ddlguard:allow no-truncate reason="please" */\nTRUNCATE guard_keep;\n')
        self.assertNotEqual(p.returncode, 0)
        self.assertIn('no truncate here', p.stderr)

    def test_created_in_session_is_known(self):
        c = self.connect(autocommit=False)
        with c.cursor() as cur:
            cur.execute('CREATE TABLE fresh_new (id int)')
            cur.execute('ALTER TABLE fresh_new ADD COLUMN v int')   # created in this transaction
        c.rollback()
        e = self.error_of(c, 'ALTER TABLE fresh_old ADD COLUMN v int')
        self.assertEqual(e.pgcode, '42501')
        self.assertIn('fresh-only', e.diag.message_detail)

    def test_parse_tree_available_to_lua(self):
        p = self.psql(self.conninfo(), '-c', "COMMENT ON TABLE guard_keep IS 'x'")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('comment via tree: OBJECT_TABLE', p.stderr)

    def test_on_connect_deny(self):
        p = self.psql(self.conninfo(application_name='forbidden-app'), '-c', 'SELECT 1')
        self.assertEqual(p.returncode, 2)
        self.assertIn('this application may not connect', p.stderr)
        self.assertProxyServes()


@proxy_only
class TestTimeouts(PolicyCase):
    """The timeout itself: applied, never loosened, restored. Retries are off here (see
    test_retry.py for what happens with them)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.settings = dict(cls.settings, retry_attempts='1')

    def hold_lock(self, table, seconds, mode='ACCESS SHARE'):
        """A session that holds `mode` on `table` for `seconds`, like an app's long transaction."""
        c = self.pg.admin()
        c.autocommit = False
        with c.cursor() as cur:
            cur.execute(f'LOCK TABLE {table} IN {mode} MODE')

        def release():
            time.sleep(seconds)
            c.rollback()
            c.close()
        t = threading.Thread(target=release)
        t.start()
        self.addCleanup(t.join)

    def test_lock_timeout_applied_and_restored(self):
        self.hold_lock('guard_locked', 4)
        c = self.connect()
        with c.cursor() as cur:
            cur.execute("SET lock_timeout = '10s'")
        t0 = time.monotonic()
        e = self.error_of(c, 'ALTER TABLE guard_locked ADD COLUMN c1 int')
        elapsed = time.monotonic() - t0
        self.assertEqual(e.pgcode, '55P03')
        self.assertLess(elapsed, 3.0)           # the policy's 700ms, not the client's 10s
        self.assertGreater(elapsed, 0.5)
        self.assertEqual(self.scalar(c, 'SHOW lock_timeout'), '10s')

    def test_client_tighter_timeout_is_kept(self):
        self.hold_lock('guard_locked', 3)
        c = self.connect()
        with c.cursor() as cur:
            cur.execute("SET lock_timeout = '200ms'")
        t0 = time.monotonic()
        e = self.error_of(c, 'ALTER TABLE guard_locked ADD COLUMN c2 int')
        self.assertEqual(e.pgcode, '55P03')
        self.assertLess(time.monotonic() - t0, 0.6)
        self.assertEqual(self.scalar(c, 'SHOW lock_timeout'), '200ms')

    def test_timeout_inside_transaction(self):
        self.hold_lock('guard_locked', 3)
        c = self.connect(autocommit=False)
        self.assertEqual(self.scalar(c, 'SHOW lock_timeout'), '0')
        e = self.error_of(c, 'ALTER TABLE guard_locked ADD COLUMN c3 int')
        self.assertEqual(e.pgcode, '55P03')
        c.rollback()
        self.assertEqual(self.scalar(c, 'SHOW lock_timeout'), '0')

    def test_timeout_success_path_restores(self):
        c = self.connect(autocommit=False)
        with c.cursor() as cur:
            cur.execute('ALTER TABLE guard_locked ADD COLUMN IF NOT EXISTS c4 int')
            cur.execute('SHOW lock_timeout')
            self.assertEqual(cur.fetchone()[0], '0')
        c.commit()

    def test_create_index_concurrently_with_timeout(self):
        # CIC waits for writers (ROW EXCLUSIVE): an uncommitted INSERT's transaction.
        self.hold_lock('guard_locked', 3, mode='ROW EXCLUSIVE')
        c = self.connect()
        t0 = time.monotonic()
        e = self.error_of(c, 'CREATE INDEX CONCURRENTLY guard_locked_cic ON guard_locked (id)')
        self.assertEqual(e.pgcode, '55P03')
        self.assertLess(time.monotonic() - t0, 2.5)
        with c.cursor() as cur:
            cur.execute('DROP INDEX IF EXISTS guard_locked_cic')
        self.assertEqual(self.scalar(c, 'SHOW lock_timeout'), '0')

    def test_timeout_extended_protocol(self):
        self.hold_lock('guard_locked', 3)
        out = run([compile_c('guard_ext'), self.conninfo(), 'timeout',
                   'ALTER TABLE guard_locked ADD COLUMN c5 int']).stdout.splitlines()
        self.assertTrue(out[0].startswith('stmt PGRES_FATAL_ERROR 55P03'), out)
        self.assertLess(int(out[1].split()[1]), 2500, out)
        self.assertEqual(out[2], 'lock_timeout PGRES_TUPLES_OK - 0')


@proxy_only
class TestPolicyFailures(ProxyTestCase):
    class_proxy = False

    def start_with(self, text, **settings):
        path = write_policy(f'{self._testMethodName}.lua', text)
        s = {'policy_files': path, 'server_tls_sslmode': 'disable'}
        s.update(settings)
        return self.start_proxy(s), path

    def denied(self, proxy, sql='CREATE TABLE guard_fail_t (id int)'):
        p = self.psql(self.conninfo(proxy=proxy), '-c', sql)
        return p

    def test_runtime_error_denies_and_logs_file_line(self):
        p, path = self.start_with('function on_statement(s)\n  local x = nil\n  return x.field\nend\n')
        r = self.denied(p)
        self.assertEqual(r.returncode, 1)
        self.assertIn('could not evaluate policy', r.stderr)
        self.assertIn(f"{os.path.basename(path)}:3:", p.log_text())
        self.assertProxyServes(p)

    def test_runtime_error_open_allows(self):
        p, _ = self.start_with('function on_statement(s) error("boom") end', policy_failure='open')
        r = self.denied(p, 'CREATE TABLE IF NOT EXISTS guard_open_t (id int)')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('boom', p.log_text())

    def test_infinite_loop_is_stopped(self):
        p, _ = self.start_with('function on_statement(s) while true do end end')
        t0 = time.monotonic()
        r = self.denied(p)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertIn('could not evaluate policy', r.stderr)
        self.assertIn('instruction budget exceeded', p.log_text())
        self.assertProxyServes(p)

    def test_pcall_cannot_swallow_the_budget(self):
        p, _ = self.start_with('function on_statement(s) while true do pcall(function() while true do end end) end end')
        r = self.denied(p)
        self.assertIn('could not evaluate policy', r.stderr)
        self.assertProxyServes(p)

    def test_memory_bomb_is_stopped(self):
        p, _ = self.start_with('function on_statement(s) local t = {} for i = 1, 1e9 do t[i] = '
                               'string.rep("x", 1e6) .. i end end', policy_memory_limit='16')
        r = self.denied(p)
        self.assertIn('could not evaluate policy', r.stderr)
        self.assertProxyServes(p)

    def test_string_rep_bomb(self):
        p, _ = self.start_with('function on_statement(s) return deny(string.rep("x", 1 << 40)) end')
        r = self.denied(p)
        self.assertIn('could not evaluate policy', r.stderr)

    def test_not_a_decision(self):
        p, _ = self.start_with('function on_statement(s) return 42 end')
        r = self.denied(p)
        self.assertIn('could not evaluate policy', r.stderr)
        self.assertIn('not a decision', r.stderr)

    def test_sandbox_has_no_io_or_os_execute(self):
        for src in ('io.open("/etc/passwd")', 'os.execute("true")', 'require("os")',
                    'load(string.dump(function() end))', 'debug.getinfo(1)'):
            with self.subTest(src=src):
                p, _ = self.start_with(f'function on_statement(s) {src} return allow() end')
                r = self.denied(p)
                self.assertIn('could not evaluate policy', r.stderr, src)
        # os.time and friends remain.
        p, _ = self.start_with('function on_statement(s) if os.time() > 0 and os.clock() >= 0 then '
                               'return deny("clock works") end end')
        self.assertIn('clock works', self.denied(p).stderr)

    def test_string_metatable_is_hidden(self):
        p, _ = self.start_with('function on_statement(s) if getmetatable("") == nil then '
                               'return deny("string metatable hidden") end end')
        self.assertIn('string metatable hidden', self.denied(p).stderr)

    def test_broken_policy_refuses_to_start(self):
        path = write_policy('broken.lua', 'function on_statement(s) return allow( end')
        r = run([ddlguard_bin(), '--upstream', f'postgres://127.0.0.1:{self.pg.port}/x',
                 '--listen', '127.0.0.1:0', '--check'], check=False)
        self.assertEqual(r.returncode, 0, r.stderr)   # no policies: fine
        cfg = os.path.join(subdir('policies'), 'broken.ini')
        with open(cfg, 'w') as f:
            f.write(f'[ddlguard]\npolicy_files = {path}\n[databases]\n* = host=127.0.0.1 port={self.pg.port}\n')
        r = run([ddlguard_bin(), '-c', cfg, '--check'], check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn('cannot load policies', r.stderr)
        self.assertIn('broken.lua:1:', r.stderr)

    def test_reload_keeps_old_policy_when_new_one_is_broken(self):
        p, path = self.start_with('function on_statement(s) if s.tag == "DROP TABLE" then return deny("v1") end end')
        self.assertIn('v1', self.denied(p, 'DROP TABLE IF EXISTS nothing_here').stderr)
        with open(path, 'w') as f:
            f.write('function on_statement(s) return deny( end')
        size = p.log_size()
        p.signal(signal.SIGHUP)
        wait_for(lambda: 'reload failed' in p.log_text()[size:], 5, what='reload failure logged')
        self.assertIn('v1', self.denied(p, 'DROP TABLE IF EXISTS nothing_here').stderr)
        with open(path, 'w') as f:
            f.write('function on_statement(s) if s.tag == "DROP TABLE" then return deny("v2") end end')
        size = p.log_size()
        p.signal(signal.SIGHUP)
        wait_for(lambda: 'configuration reloaded' in p.log_text()[size:], 5, what='reload')
        self.assertIn('v2', self.denied(p, 'DROP TABLE IF EXISTS nothing_here').stderr)


@proxy_only
class TestCheckAgreesWithProxy(PolicyCase):

    MIGRATION = ('CREATE TABLE guard_chk (id int);\n'
                 'CREATE INDEX guard_chk_idx ON guard_chk (id);\n'
                 'DROP TABLE guard_keep;\n')

    def test_same_verdict_offline_and_online(self):
        path = os.path.join(subdir('policies'), 'migration.sql')
        with open(path, 'w') as f:
            f.write(self.MIGRATION)
        r = run([ddlguard_bin(), 'check', '--policy', self.policy_path, '--format', 'json', path], check=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        import json
        findings = json.loads(r.stdout)
        deny = [f for f in findings if f['decision'] == 'deny']
        warn = [f for f in findings if f['decision'] == 'warn']
        self.assertEqual([(d['line'], d['rule']) for d in deny], [(3, 'no-drop-table')])
        self.assertEqual([(w['line'], w['rule']) for w in warn], [(2, 'concurrent-index')])
        p = self.psql(self.conninfo(), '-1', '-f', path)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(f'psql:{path}:3: ERROR:  {deny[0]["message"]}', p.stderr)
        self.assertIn('ddlguard rule: no-drop-table', p.stderr)
        self.assertIn(warn[0]['message'], p.stderr)
        self.assertFalse(self.exists('guard_chk'))

    def test_check_text_and_exit_codes(self):
        ok = os.path.join(subdir('policies'), 'ok.sql')
        with open(ok, 'w') as f:
            f.write('CREATE TABLE t_ok (id int);\nCREATE INDEX CONCURRENTLY t_ok_i ON t_ok (id);\n')
        r = run([ddlguard_bin(), 'check', '-p', self.policy_path, ok], check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn('0 denied, 0 warnings', r.stdout)
        r = run([ddlguard_bin(), 'check', '-p', self.policy_path, '-'], check=False, input='DROP TABLE x;')
        self.assertEqual(r.returncode, 1)
        self.assertIn('<stdin>:1:1: deny no-drop-table: dropping a table breaks the running app', r.stdout)
        r = run([ddlguard_bin(), 'check', '-p', '/nonexistent.lua', ok], check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn('cannot open policy file', r.stderr)


FACTS_POLICY = r'''
-- Reports what facts() says about each relation, so the test reads it off the warning.
function on_statement(stmt, session)
  for _, o in ipairs(stmt.objects) do
    if o.lock_level > 0 and not o.created then
      local f = facts(o)
      if f == nil then return warn("facts: none for " .. o.name) end
      if not f.exists then return warn("facts: " .. o.name .. " missing") end
      local h = f.holders[1]
      return warn(string.format("facts: %s rows=%s indexes=%d big=%s holders=%d first=%s",
        o.name, tostring(f.rows), f.indexes, tostring(f.bytes > 8192), #f.holders,
        h and (h.application_name .. "/" .. h.mode) or "-"))
    end
  end
end
'''


@proxy_only
class TestFacts(ProxyTestCase):
    class_proxy = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pg.psql_admin('DROP TABLE IF EXISTS facts_t; CREATE TABLE facts_t (id int PRIMARY KEY, v text); '
                          "INSERT INTO facts_t SELECT g, repeat('x', 100) FROM generate_series(1, 5000) g; "
                          f'ANALYZE facts_t; ALTER TABLE facts_t OWNER TO {USERS["trust"][0]}')
        cls.policy = write_policy('facts.lua', FACTS_POLICY)

    def proxy_with(self, **settings):
        s = {'policy_files': self.policy, 'server_tls_sslmode': 'disable', 'monitor_user': USERS['scram'][0],
             'monitor_password': USERS['scram'][1]}
        s.update(settings)
        return self.start_proxy(s)

    def warning_for(self, proxy, sql):
        c = self.connect(proxy=proxy)
        with c.cursor() as cur:
            cur.execute(sql)
        # Each notice is "WARNING:  message\nDETAIL:  ddlguard rule: …": keep the first line.
        return [n.strip().splitlines()[0] for n in c.notices if 'facts:' in n]

    def test_rows_indexes_and_holders(self):
        p = self.proxy_with()
        self.assertIn('WARNING:  facts: facts_t rows=5000 indexes=1 big=true holders=0 first=-',
                      self.warning_for(p, 'ALTER TABLE facts_t ADD COLUMN IF NOT EXISTS a1 int'))
        # An application transaction that read the table holds AccessShareLock: policies see it.
        app = self.pg.admin()
        app.autocommit = False
        with app.cursor() as cur:
            cur.execute("SET application_name = 'the-app'")
            cur.execute('SELECT count(*) FROM facts_t')
        try:
            p2 = self.proxy_with(facts_cache_seconds='0')
            c = self.connect(proxy=p2)
            with c.cursor() as cur:
                cur.execute("SET lock_timeout = '300ms'")
                with self.assertRaises(psycopg2.Error):
                    cur.execute('ALTER TABLE facts_t ADD COLUMN IF NOT EXISTS a2 int')
            notes = [n for n in c.notices if 'facts:' in n]
            self.assertTrue(any('holders=1 first=the-app/AccessShareLock' in n for n in notes), c.notices)
        finally:
            app.rollback()
            app.close()

    def test_missing_relation(self):
        p = self.proxy_with()
        c = self.connect(proxy=p)
        with self.assertRaises(psycopg2.Error):
            with c.cursor() as cur:
                cur.execute('CREATE INDEX ON facts_nope (id)')
        self.assertTrue(any('facts: facts_nope missing' in n for n in c.notices), c.notices)

    def test_no_monitor_user_means_no_facts(self):
        p = self.proxy_with(monitor_user='')
        self.assertIn('WARNING:  facts: none for facts_t',
                      self.warning_for(p, 'ALTER TABLE facts_t ADD COLUMN IF NOT EXISTS a3 int'))

    def test_unreachable_side_connection_does_not_hang(self):
        p = self.proxy_with(monitor_password='wrong', facts_timeout='2')
        t0 = time.monotonic()
        self.assertIn('WARNING:  facts: none for facts_t',
                      self.warning_for(p, 'ALTER TABLE facts_t ADD COLUMN IF NOT EXISTS a4 int'))
        self.assertLess(time.monotonic() - t0, 5)
        self.assertIn('side connection', p.log_text())
        self.assertNotIn('wrong', p.log_text())   # the password never reaches the log

    def test_check_upstream_agrees(self):
        p = self.proxy_with()
        online = self.warning_for(p, 'ALTER TABLE facts_t ADD COLUMN IF NOT EXISTS a5 int')
        up = (f"host={self.pg.host} port={self.pg.port} dbname={APPDB} user={USERS['scram'][0]} "
              f"password={USERS['scram'][1]} sslmode=disable")
        r = run([ddlguard_bin(), 'check', '-p', self.policy, '-u', up, '-'], check=False,
                input='ALTER TABLE facts_t ADD COLUMN IF NOT EXISTS a5 int;')
        self.assertEqual(r.returncode, 0, r.stderr)
        offline = [l.split(': ', 2)[2] for l in r.stdout.splitlines() if 'facts:' in l]
        self.assertEqual([o.replace('WARNING:  ', '') for o in online], offline)

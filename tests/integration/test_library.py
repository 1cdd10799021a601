"""The shipped rule library through the proxy: the default profile denies a blocking index
build on an existing big table but not on a new or (with live facts) small one, levels can be
changed per environment, and every strong-lock statement gets the library's lock_timeout and
is retried behind a blocker."""

import threading
import time

import psycopg2

from harness import APPDB, ProxyTestCase, USERS, compile_java, proxy_only, run


@proxy_only
class TestLibrary(ProxyTestCase):
    class_proxy = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        owner = USERS['trust'][0]
        cls.pg.psql_admin(
            'DROP TABLE IF EXISTS lib_big, lib_small CASCADE; '
            'CREATE TABLE lib_big (id int, email text); '
            "INSERT INTO lib_big SELECT g, 'u' || g FROM generate_series(1, 20000) g; "
            'CREATE TABLE lib_small (id int, email text); INSERT INTO lib_small VALUES (1, \'a\'); '
            f'ANALYZE lib_big; ANALYZE lib_small; ALTER TABLE lib_big OWNER TO {owner}; '
            f'ALTER TABLE lib_small OWNER TO {owner}')

    def guard(self, environment='production', **settings):
        s = {'rules': 'default', 'server_tls_sslmode': 'disable', 'environment': environment,
             'monitor_user': USERS['scram'][0], 'monitor_password': USERS['scram'][1]}
        s.update(settings)
        return self.start_proxy(s)

    def run_sql(self, p, sql):
        return self.psql(self.conninfo(proxy=p), '-c', sql)

    def test_blocking_index_on_existing_big_table_is_denied(self):
        p = self.guard()
        r = self.run_sql(p, 'CREATE INDEX lib_big_email ON lib_big (email)')
        self.assertEqual(r.returncode, 1)
        self.assertIn('ERROR:  CREATE INDEX on lib_big blocks writes until the build ends (about 20000 rows; SHARE)',
                      r.stderr)
        self.assertIn('DETAIL:  ddlguard rule: require-concurrent-index.', r.stderr)
        self.assertIn('HINT:  CREATE INDEX CONCURRENTLY', r.stderr)
        r = self.run_sql(p, 'CREATE INDEX CONCURRENTLY lib_big_email ON lib_big (email)')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.pg.psql_admin('DROP INDEX lib_big_email')

    def test_small_table_and_new_table_are_exempt(self):
        p = self.guard()
        r = self.run_sql(p, 'CREATE INDEX lib_small_email ON lib_small (email)')
        self.assertEqual(r.returncode, 0, r.stderr)      # 1 row: below small_table_rows
        r = self.psql(self.conninfo(proxy=p), input='CREATE TABLE lib_new (id int, email text);\n'
                      'CREATE INDEX lib_new_email ON lib_new (email);\nDROP TABLE lib_new;\n')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.pg.psql_admin('DROP INDEX IF EXISTS lib_small_email')

    def test_one_query_sees_its_own_earlier_statements(self):
        """Several statements in one simple Query (dbmate, psql -c): each is judged knowing
        the ones before it. Two CREATEs then an index on the first (new, so exempt); a
        NOT VALID constraint validated in the same transaction is denied, one validated
        after a COMMIT in the same Query is not."""
        p = self.guard()
        r = self.run_sql(p, 'CREATE TABLE lib_q1 (id int); CREATE TABLE lib_q2 (id int); '
                            'CREATE TABLE lib_q3 (id int); CREATE INDEX lib_q1_id ON lib_q1 (id); '
                            'DROP TABLE lib_q1, lib_q2, lib_q3')
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.run_sql(p, 'ALTER TABLE lib_big ADD CONSTRAINT lib_big_id_pos CHECK (id > 0) NOT VALID; '
                            'ALTER TABLE lib_big VALIDATE CONSTRAINT lib_big_id_pos')
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn('ddlguard rule: validate-in-same-transaction', r.stderr)
        self.assertNotIn('lib_big_id_pos', self.pg.psql_admin(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'lib_big'::regclass"))
        r = self.run_sql(p, 'BEGIN; ALTER TABLE lib_big ADD CONSTRAINT lib_big_id_pos CHECK (id > 0) NOT VALID; '
                            'COMMIT; ALTER TABLE lib_big VALIDATE CONSTRAINT lib_big_id_pos')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.pg.psql_admin('ALTER TABLE lib_big DROP CONSTRAINT lib_big_id_pos')

    def test_concurrent_index_over_the_extended_protocol(self):
        """pgjdbc (Flyway, Liquibase): CREATE INDEX CONCURRENTLY gets the library's
        lock_timeout and still runs (ddlguard's SET has its own implicit transaction). In a
        batch behind an INSERT (one Sync) PostgreSQL refuses it as it would directly, and
        ddlguard's Sync must not commit the INSERT ahead of it."""
        p = self.guard(monitor_user='', log_level='debug')   # no facts: lib_small counts as big
        cp = compile_java('ConcurrentIndex')
        url = f'jdbc:postgresql://{p.host}:{p.port}/{APPDB}?sslmode=disable'
        role, pw = USERS['trust'][0], ''
        try:
            r = run(['java', '-cp', cp, 'ConcurrentIndex', url, role, pw, 'lib_small'], timeout=120)
            lines = r.stdout.splitlines()
            self.assertEqual(lines[0], 'alone ok', r.stdout + r.stderr)
            self.assertRegex(lines[1], r'^batch 25001 .*cannot be executed within a pipeline')
            self.assertEqual(lines[2], 'rows 0')
            self.assertIn('decision: lock_timeout 2000 ms', p.log_text())   # the path under test ran
        finally:
            self.pg.psql_admin('DROP INDEX IF EXISTS lib_small_cic, lib_small_cic2; '
                               'DELETE FROM lib_small WHERE id = -1')

    def test_without_facts_a_table_counts_as_big(self):
        p = self.guard(monitor_user='')
        r = self.run_sql(p, 'CREATE INDEX lib_small_email2 ON lib_small (email)')
        self.assertEqual(r.returncode, 1)
        self.assertIn('require-concurrent-index', r.stderr)

    def test_levels_per_environment(self):
        staging = self.guard('staging', rule_levels='staging/require-concurrent-index:warn')
        r = self.run_sql(staging, 'CREATE INDEX lib_big_v ON lib_big (id)')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('WARNING:  CREATE INDEX on lib_big blocks writes', r.stderr)
        self.pg.psql_admin('DROP INDEX lib_big_v')
        prod = self.guard('production', rule_levels='staging/require-concurrent-index:warn')
        self.assertEqual(self.run_sql(prod, 'CREATE INDEX lib_big_v ON lib_big (id)').returncode, 1)
        off = self.guard('production', rule_levels='require-concurrent-index:off')
        self.assertEqual(self.run_sql(off, 'CREATE INDEX lib_big_v ON lib_big (id)').returncode, 0)
        self.pg.psql_admin('DROP INDEX lib_big_v')

    def test_unknown_rule_in_levels_refuses_to_start(self):
        from harness import ProxyStartError
        with self.assertRaises(ProxyStartError) as cm:
            self.guard(rule_levels='no-such-rule:deny')
        self.assertIn('unknown rule', str(cm.exception))

    def test_library_lock_timeout_and_retry_behind_a_blocker(self):
        p = self.guard(lock_timeout='400ms')
        app = self.pg.admin()
        app.autocommit = False
        with app.cursor() as cur:
            cur.execute("SET application_name = 'long-report'")
            cur.execute('SELECT count(*) FROM lib_big')

        def release():
            time.sleep(2)
            app.commit()
            app.close()
        t = threading.Thread(target=release)
        t.start()
        try:
            r = self.run_sql(p, 'ALTER TABLE lib_big ADD COLUMN IF NOT EXISTS nick text')
        finally:
            t.join()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('retrying in', r.stderr)
        self.assertIn('long-report', r.stderr)

    def test_levels_from_a_policy_file(self):
        import os
        from harness import subdir
        pol = os.path.join(subdir('policies'), 'levels.lua')
        with open(pol, 'w') as f:
            f.write('rule_levels = { ["require-concurrent-index"] = "warn" }\n'
                    'function on_statement(stmt, session) end\n')
        p = self.guard(policy_files=pol)
        r = self.run_sql(p, 'CREATE INDEX lib_big_pf ON lib_big (id)')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('WARNING:  CREATE INDEX on lib_big blocks writes', r.stderr)
        self.pg.psql_admin('DROP INDEX lib_big_pf')
        # The configuration's rule_levels win over the policy file's.
        p2 = self.guard(policy_files=pol, rule_levels='require-concurrent-index:deny')
        self.assertEqual(self.run_sql(p2, 'CREATE INDEX lib_big_pf ON lib_big (id)').returncode, 1)

"""The Prometheus endpoint: counters that move with what happens, and /healthz."""

import os
import urllib.request

from harness import USERS, ProxyTestCase, free_port, proxy_only, subdir


@proxy_only
class TestMetrics(ProxyTestCase):
    class_proxy = False

    def proxy_with_metrics(self, name, policy):
        """A ddlguard with one policy file and a metrics endpoint; returns it and a scraper
        giving {series: value}."""
        pol = os.path.join(subdir('policies'), name)
        with open(pol, 'w') as f:
            f.write(policy)
        port = free_port()
        p = self.start_proxy({'server_tls_sslmode': 'disable', 'policy_files': pol,
                              'metrics_listen': f'127.0.0.1:{port}'})

        def scrape():
            with urllib.request.urlopen(f'http://127.0.0.1:{port}/metrics', timeout=5) as r:
                self.assertEqual(r.status, 200)
                return {l.rsplit(' ', 1)[0]: float(l.rsplit(' ', 1)[1])
                        for l in r.read().decode().splitlines() if l and not l.startswith('#')}
        return p, port, scrape

    def test_counters_and_health(self):
        p, port, scrape = self.proxy_with_metrics(
            'metrics.lua', 'function on_statement(s) if s.tag == "DROP TABLE" then '
                           'return deny{ rule = "no-drop", message = "no" } end end\n')
        before = scrape()
        self.psql(self.conninfo(proxy=p), '-c', 'DROP TABLE IF EXISTS metrics_nothing')
        self.psql(self.conninfo(proxy=p), '-c', 'CREATE TABLE IF NOT EXISTS metrics_t (id int)')
        after = scrape()
        self.assertEqual(after['ddlguard_logins_total'] - before['ddlguard_logins_total'], 2)
        self.assertEqual(after['ddlguard_statements_total{decision="deny"}'], 1)
        self.assertGreaterEqual(after['ddlguard_statements_total{decision="allow"}'], 1)
        self.assertEqual(after['ddlguard_rule_decisions_total{rule="no-drop",decision="deny"}'], 1)
        self.assertGreater(after['ddlguard_bytes_total{direction="from_client"}'], 0)
        with urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=5) as r:
            self.assertEqual((r.status, r.read()), (200, b'ok\n'))
        self.pg.psql_admin('DROP TABLE IF EXISTS metrics_t')

    def test_rule_labels_are_bounded(self):
        # A policy picks its rule ids; one per statement must not grow the endpoint (and
        # ddlguard's memory) without end: past 256 distinct ids the rest count as "other".
        p, _, scrape = self.proxy_with_metrics(
            'many_rules.lua', 'function on_statement(s) if s.tag == "COMMENT" then '
                              'return warn{ rule = "r" .. s.text:match("x(%d+)"), message = "w" } end end\n')
        self.pg.psql_admin(f'CREATE TABLE IF NOT EXISTS metrics_c (id int); '
                           f'ALTER TABLE metrics_c OWNER TO {USERS["trust"][0]}')
        sql = ''.join(f"COMMENT ON TABLE metrics_c IS 'x{i}';\n" for i in range(300))
        r = self.psql(self.conninfo(proxy=p), input=sql)
        self.assertEqual(r.returncode, 0, r.stderr[-500:])
        warn = {k.split('rule="')[1].split('"')[0]: v for k, v in scrape().items()
                if k.startswith('ddlguard_rule_decisions_total') and 'decision="warn"' in k}
        self.assertEqual(len(warn), 257, len(warn))
        self.assertEqual(warn['other'], 300 - 256)
        self.assertEqual(sum(warn.values()), 300)
        self.pg.psql_admin('DROP TABLE IF EXISTS metrics_c')

"""NotificationResponse carries the notifying backend's pid. Clients were given ddlguard's own
BackendKeyData, so ddlguard translates the pid: an application that ignores its own
notifications (pid == PQbackendPID()) keeps working, and another ddlguard client's
notifications carry that client's pid."""

import psycopg2

from harness import ProxyTestCase, proxy_only


@proxy_only
class TestNotificationPid(ProxyTestCase):

    def listener(self):
        c = self.connect()
        with c.cursor() as cur:
            cur.execute('LISTEN ddlg_chan')
        return c

    def test_own_and_other_session_pids(self):
        a, b = self.listener(), self.listener()
        with a.cursor() as cur:
            cur.execute("NOTIFY ddlg_chan, 'from-a'")
        for c in (a, b):
            with c.cursor() as cur:
                cur.execute('SELECT 1')   # read what is pending
        self.assertEqual([(n.pid, n.payload) for n in a.notifies], [(a.get_backend_pid(), 'from-a')])
        self.assertEqual([(n.pid, n.payload) for n in b.notifies], [(a.get_backend_pid(), 'from-a')])
        self.assertNotEqual(a.get_backend_pid(), b.get_backend_pid())

    def test_pid_of_a_direct_client_is_unchanged(self):
        b = self.listener()
        direct = self.pg.admin()
        direct.autocommit = True
        with direct.cursor() as cur:
            cur.execute("NOTIFY ddlg_chan, 'from-direct'")
            server_pid = direct.get_backend_pid()
        with b.cursor() as cur:
            cur.execute('SELECT 1')
        self.assertEqual([(n.pid, n.payload) for n in b.notifies], [(server_pid, 'from-direct')])
        direct.close()

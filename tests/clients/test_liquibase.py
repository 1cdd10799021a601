"""Liquibase (npm "liquibase": Liquibase 4.28 and its PostgreSQL JDBC driver, on the system
java) through ddlguard, with a formatted-SQL changelog.

The connection is the usual CLI arguments: --url jdbc:postgresql://host:port/db?sslmode=...,
--username, --password, --changelog-file. Each changeset runs in a transaction of its own
unless it says runInTransaction:false (then every statement commits on its own); the applied
changesets are rows of databasechangelog (id, author, filename).
"""

import os

from common import ClientCase, PASSWORD, ROLE, proxy_only, run

HERE = os.path.dirname(os.path.abspath(__file__))
LIQUIBASE = os.path.join(HERE, 'node', 'node_modules', '.bin', 'node-liquibase')

# (changeset id, attributes, SQL, rollback SQL)
CHANGESETS = [
    ('001-accounts', '',
     "CREATE TABLE accounts (id int PRIMARY KEY, email text NOT NULL);\n"
     "CREATE TABLE orders (id int PRIMARY KEY, account_id int);\n"
     "INSERT INTO accounts VALUES (1, 'a@example.com'), (2, 'b@example.com');\n"
     "INSERT INTO orders VALUES (1, 1), (2, 2);\n",
     "DROP TABLE orders; DROP TABLE accounts;"),
    ('002-accounts-email', '',
     "CREATE INDEX accounts_email ON accounts (email);\n",
     "DROP INDEX accounts_email;"),
    ('003-accounts-name', '',
     "ALTER TABLE accounts ADD COLUMN name text;\n"
     "UPDATE accounts SET name = split_part(email, '@', 1);\n",
     "ALTER TABLE accounts DROP COLUMN name;"),
    # CREATE INDEX CONCURRENTLY cannot run in a transaction: runInTransaction:false.
    ('004-accounts-email-unique', ' runInTransaction:false',
     "CREATE UNIQUE INDEX CONCURRENTLY accounts_email_unique ON accounts (email);\n",
     "DROP INDEX accounts_email_unique;"),
    # The foreign key is added NOT VALID and validated in a transaction of its own (rule
    # validate-in-same-transaction): runInTransaction:false commits each statement.
    ('005-orders-account-fk', ' runInTransaction:false',
     "ALTER TABLE orders ADD CONSTRAINT orders_account_fk FOREIGN KEY (account_id) "
     "REFERENCES accounts (id) NOT VALID;\n"
     "ALTER TABLE orders VALIDATE CONSTRAINT orders_account_fk;\n",
     "ALTER TABLE orders DROP CONSTRAINT orders_account_fk;"),
]
# The dangerous one: a blocking index on a big table, in a (transactional) changeset.
DANGEROUS = ('006-accounts-name-idx', '',
             "ALTER TABLE accounts ADD COLUMN nick text;\n"
             "CREATE INDEX accounts_name ON accounts (name);\n",
             "DROP INDEX accounts_name; ALTER TABLE accounts DROP COLUMN nick;")
AUTHOR = 'ddlguard'


@proxy_only
class TestLiquibase(ClientCase):
    tool = 'liquibase'

    def write(self, d, changesets):
        parts = ['--liquibase formatted sql\n']
        for cid, attrs, sql, rollback in changesets:
            parts.append(f'\n--changeset {AUTHOR}:{cid}{attrs}\n{sql}--rollback {rollback}\n')
        with open(os.path.join(d, 'changelog.sql'), 'w') as f:
            f.write(''.join(parts))

    def liquibase(self, mode, db, d, *args):
        p = self.proxy_for(mode)
        ssl = 'require' if mode == 'tls' else 'disable'
        # No banner. (Liquibase 4.28 has no analytics to turn off: it rejects
        # LIQUIBASE_ANALYTICS_ENABLED as an unknown variable, and asks nothing.)
        env = dict(self.env(mode, db), LIQUIBASE_SHOW_BANNER='false')
        # The only settings: the JDBC URL (pointing at ddlguard) and the credentials.
        # (node-liquibase joins its arguments into a shell command: none needs quoting.)
        return run([LIQUIBASE, f'--url=jdbc:postgresql://{p.host}:{p.port}/{db}?sslmode={ssl}',
                    f'--username={ROLE}', f'--password={PASSWORD}', '--changelog-file=changelog.sql']
                   + list(args), check=False, cwd=d, env=env, timeout=300)

    def recorded(self, db):
        return [r[0] for r in self.rows(db, 'SELECT id FROM databasechangelog ORDER BY orderexecuted')]

    def check_all_applied(self, db):
        self.assertEqual(self.tables(db), {'accounts', 'orders', 'databasechangelog', 'databasechangeloglock'})
        self.assertEqual(self.columns(db, 'accounts'), ['id', 'email', 'name'])
        self.assertEqual(self.indexes(db, 'accounts'),
                         {'accounts_pkey': True, 'accounts_email': True, 'accounts_email_unique': True})
        self.assertEqual(self.constraints(db, 'orders')['orders_account_fk'], ('f', True))
        self.assertEqual(self.recorded(db), [c[0] for c in CHANGESETS])

    def scenario(self, mode):
        db = self.fresh_db(mode)
        d = self.workdir(mode)
        self.write(d, CHANGESETS)
        p = self.liquibase(mode, db, d, 'update')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.check_all_applied(db)

        # ddlguard's warnings (drop-foreign-key) reach Liquibase as JDBC SQLWarnings, which it
        # logs at WARNING on stderr; node-liquibase prints only stdout when the command
        # succeeds, so they are seen with a log file.
        log = os.path.join(d, 'rollback.log')
        p = self.liquibase(mode, db, d, '--log-level=warning', f'--log-file={log}', 'rollback-count', '--count=1')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        with open(log) as f:
            self.assertRegex(f.read(), r'WARNING .*DROP CONSTRAINT orders_account_fk on orders')
        self.assertNotIn('orders_account_fk', self.constraints(db, 'orders'))
        self.assertEqual(self.recorded(db), [c[0] for c in CHANGESETS[:4]])

        p = self.liquibase(mode, db, d, 'update')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.check_all_applied(db)

        self.make_big(db, 'accounts', "g, 'user' || g || '@example.com', 'user' || g")
        self.write(d, CHANGESETS + [DANGEROUS])
        p = self.liquibase(mode, db, d, 'update')
        self.assertDenied(p)
        out = p.stdout + p.stderr
        self.assertRegex(out, r'ddlguard rule: (require-concurrent-index|long-statement-under-access-exclusive)')
        self.assertIn('Hint:', out)
        self.assertNotIn('nick', self.columns(db, 'accounts'))     # the changeset rolled back
        self.assertNotIn('accounts_name', self.indexes(db, 'accounts'))
        self.assertEqual(self.recorded(db), [c[0] for c in CHANGESETS])

    def test_plain(self):
        self.scenario('plain')

    def test_tls_both_legs(self):
        self.scenario('tls')

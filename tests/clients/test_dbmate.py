"""dbmate (npm "dbmate", the Go binary) through ddlguard.

dbmate reads DATABASE_URL (postgres://user:password@host:port/db?sslmode=...) and the
migrations in ./db/migrations/<version>_<name>.sql, each with a `-- migrate:up` and a
`-- migrate:down` section. Each section runs in a transaction of its own unless its marker says
`transaction:false`; the applied versions are rows of schema_migrations (version).
"""

import os
import shutil

from common import ClientCase, proxy_only, run

HERE = os.path.dirname(os.path.abspath(__file__))
DBMATE = os.path.join(HERE, 'node', 'node_modules', '.bin', 'dbmate')

# (version, name, up marker options, up, down)
MIGRATIONS = [
    ('20240101000001', 'accounts', '',
     "CREATE TABLE accounts (id int PRIMARY KEY, email text NOT NULL);\n"
     "CREATE TABLE orders (id int PRIMARY KEY, account_id int);\n"
     "INSERT INTO accounts VALUES (1, 'a@example.com'), (2, 'b@example.com');\n"
     "INSERT INTO orders VALUES (1, 1), (2, 2);\n",
     "DROP TABLE orders;\nDROP TABLE accounts;\n"),
    ('20240101000002', 'accounts_email', '',
     "CREATE INDEX accounts_email ON accounts (email);\n",
     "DROP INDEX accounts_email;\n"),
    ('20240101000003', 'accounts_name', '',
     "ALTER TABLE accounts ADD COLUMN name text;\n"
     "UPDATE accounts SET name = split_part(email, '@', 1);\n",
     "ALTER TABLE accounts DROP COLUMN name;\n"),
    # CREATE INDEX CONCURRENTLY cannot run in a transaction: dbmate's transaction:false.
    # dbmate sends the section as one Query, so it must be the section's only statement
    # (PostgreSQL runs a multi-statement Query in an implicit transaction).
    ('20240101000004', 'accounts_email_unique', ' transaction:false',
     "CREATE UNIQUE INDEX CONCURRENTLY accounts_email_unique ON accounts (email);\n",
     "DROP INDEX accounts_email_unique;\n"),
    # The foreign key is added NOT VALID and validated in a transaction of its own (rule
    # validate-in-same-transaction): transaction:false, and the ADD in a BEGIN … COMMIT of
    # its own, so the VALIDATE runs in the next transaction. (dbmate sends the section as one
    # Query: without that COMMIT both would share the Query's implicit transaction.)
    ('20240101000005', 'orders_account_fk', ' transaction:false',
     "BEGIN;\n"
     "ALTER TABLE orders ADD CONSTRAINT orders_account_fk FOREIGN KEY (account_id) "
     "REFERENCES accounts (id) NOT VALID;\n"
     "COMMIT;\n"
     "ALTER TABLE orders VALIDATE CONSTRAINT orders_account_fk;\n",
     "ALTER TABLE orders DROP CONSTRAINT orders_account_fk;\n"),
]
# The dangerous one: a blocking index on a big table, in a (transactional) migration.
DANGEROUS = ('20240101000006', 'accounts_name_idx', '',
             "ALTER TABLE accounts ADD COLUMN nick text;\n"
             "CREATE INDEX accounts_name ON accounts (name);\n",
             "DROP INDEX accounts_name;\nALTER TABLE accounts DROP COLUMN nick;\n")


@proxy_only
class TestDbmate(ClientCase):
    tool = 'dbmate'

    def project(self, mode):
        d = self.workdir(mode)
        shutil.rmtree(os.path.join(d, 'db'), ignore_errors=True)
        os.makedirs(os.path.join(d, 'db', 'migrations'))
        return d

    def write(self, d, migration):
        version, name, options, up, down = migration
        with open(os.path.join(d, 'db', 'migrations', f'{version}_{name}.sql'), 'w') as f:
            f.write(f'-- migrate:up{options}\n{up}\n-- migrate:down\n{down}')

    def dbmate(self, mode, db, d, *args):
        # The only setting: DATABASE_URL, pointing at ddlguard (self.env sets it).
        return run([DBMATE, '--no-dump-schema'] + list(args), check=False, cwd=d, env=self.env(mode, db))

    def recorded(self, db):
        return [r[0] for r in self.rows(db, 'SELECT version FROM schema_migrations ORDER BY version')]

    def check_all_applied(self, db):
        self.assertEqual(self.tables(db), {'accounts', 'orders', 'schema_migrations'})
        self.assertEqual(self.columns(db, 'accounts'), ['id', 'email', 'name'])
        self.assertEqual(self.indexes(db, 'accounts'),
                         {'accounts_pkey': True, 'accounts_email': True, 'accounts_email_unique': True})
        self.assertEqual(self.constraints(db, 'orders')['orders_account_fk'], ('f', True))
        self.assertEqual(self.recorded(db), [m[0] for m in MIGRATIONS])

    def scenario(self, mode):
        db = self.fresh_db(mode)
        d = self.project(mode)
        for m in MIGRATIONS:
            self.write(d, m)
        p = self.dbmate(mode, db, d, 'up')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        for version, name, *_ in MIGRATIONS:
            self.assertIn(f'Applying: {version}_{name}.sql', p.stdout)
        self.check_all_applied(db)

        p = self.dbmate(mode, db, d, 'rollback')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn('Rolling back: 20240101000005_orders_account_fk.sql', p.stdout)
        self.assertNotIn('orders_account_fk', self.constraints(db, 'orders'))
        self.assertEqual(self.recorded(db), [m[0] for m in MIGRATIONS[:4]])
        # ddlguard warns (drop-foreign-key), but lib/pq drops NOTICE/WARNING messages: dbmate
        # shows nothing of it. The warning is in ddlguard's log.
        self.assertNotIn('WARNING', p.stdout + p.stderr)
        with open(self.proxy_for(mode).stderr_path) as f:
            self.assertIn('decision: warn ALTER TABLE orders', f.read())

        p = self.dbmate(mode, db, d, 'up')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn('Applying: 20240101000005_orders_account_fk.sql', p.stdout)
        self.check_all_applied(db)

        self.make_big(db, 'accounts', "g, 'user' || g || '@example.com', 'user' || g")
        self.write(d, DANGEROUS)
        p = self.dbmate(mode, db, d, 'up')
        # dbmate (lib/pq) prints only the error's message, "pq: <message>": not its DETAIL
        # nor its HINT (no dbmate flag shows them). ddlguard ends the message with the rule's
        # id, which leads to docs/rules/<id>.md and its fix.
        self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stderr, r'Error: pq: CREATE INDEX on accounts (blocks writes until the build ends|'
                                   r'\(it reads all of it\) runs while this transaction holds ACCESS EXCLUSIVE)'
                                   r'.*\(ddlguard: (require-concurrent-index|long-statement-under-access-exclusive)\)')
        with open(self.proxy_for(mode).stderr_path) as f:
            self.assertRegex(f.read(), r'decision: deny CREATE INDEX accounts, accounts_name \(rule '
                                       r'(require-concurrent-index|long-statement-under-access-exclusive),')
        self.assertNotIn('nick', self.columns(db, 'accounts'))     # the transaction rolled back
        self.assertNotIn('accounts_name', self.indexes(db, 'accounts'))
        self.assertEqual(self.recorded(db), [m[0] for m in MIGRATIONS])

    def test_plain(self):
        self.scenario('plain')

    def test_tls_both_legs(self):
        self.scenario('tls')

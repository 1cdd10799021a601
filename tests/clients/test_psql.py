"""psql -f and psql -1 (single transaction) through ddlguard: the reference tool."""

import os

from common import ClientCase, proxy_only, run

# The five migrations every tool applies (in its own format). The foreign key is added NOT
# VALID and validated in a transaction of its own: validating it in the same transaction
# would hold both tables' locks for the whole scan (rule validate-in-same-transaction).
MIGRATIONS = [
    ('001_accounts', "CREATE TABLE accounts (id int PRIMARY KEY, email text NOT NULL);\n"
                     "CREATE TABLE orders (id int PRIMARY KEY, account_id int);\n"
                     "INSERT INTO accounts VALUES (1, 'a@example.com'), (2, 'b@example.com');\n"
                     "INSERT INTO orders VALUES (1, 1), (2, 2);\n"),
    ('002_accounts_email', "CREATE INDEX accounts_email ON accounts (email);\n"),
    ('003_accounts_name', "ALTER TABLE accounts ADD COLUMN name text;\n"
                          "UPDATE accounts SET name = split_part(email, '@', 1);\n"),
    ('004_accounts_email_unique', "CREATE UNIQUE INDEX CONCURRENTLY accounts_email_unique ON accounts (email);\n"),
    ('005_orders_account_fk', "ALTER TABLE orders ADD CONSTRAINT orders_account_fk FOREIGN KEY (account_id) "
                              "REFERENCES accounts (id) NOT VALID;\n"
                              "ALTER TABLE orders VALIDATE CONSTRAINT orders_account_fk;\n"),
]
ROLLBACK_LAST = "ALTER TABLE orders DROP CONSTRAINT orders_account_fk;\n"
NON_TRANSACTIONAL = ('004_accounts_email_unique', '005_orders_account_fk')


@proxy_only
class TestPsql(ClientCase):
    tool = 'psql'

    def psql(self, mode, db, *args, **kw):
        return run(['psql', '-X', '-v', 'ON_ERROR_STOP=1', '-d', db] + list(args), check=False,
                   env=self.env(mode, db), **kw)

    def apply(self, mode, db, name, sql, single=True):
        path = os.path.join(self.workdir(mode), name + '.sql')
        with open(path, 'w') as f:
            f.write(sql)
        # CREATE INDEX CONCURRENTLY cannot run in a transaction, and the FK is validated in
        # a transaction of its own: psql -f (each statement commits) for those, -1 otherwise.
        args = ['-f', path] if name in NON_TRANSACTIONAL or not single else ['-1', '-f', path]
        return self.psql(mode, db, *args)

    def check_all_applied(self, db):
        self.assertEqual(self.tables(db), {'accounts', 'orders'})
        self.assertEqual(self.columns(db, 'accounts'), ['id', 'email', 'name'])
        self.assertEqual(self.indexes(db, 'accounts'),
                         {'accounts_pkey': True, 'accounts_email': True, 'accounts_email_unique': True})
        self.assertEqual(self.constraints(db, 'orders')['orders_account_fk'], ('f', True))

    def scenario(self, mode):
        db = self.fresh_db(mode)
        for name, sql in MIGRATIONS:
            p = self.apply(mode, db, name, sql)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.check_all_applied(db)
        p = self.apply(mode, db, 'rollback_005', ROLLBACK_LAST)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('WARNING:', p.stderr)                 # drop-foreign-key warns (P2)
        self.assertNotIn('orders_account_fk', self.constraints(db, 'orders'))
        p = self.apply(mode, db, MIGRATIONS[-1][0], MIGRATIONS[-1][1])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.check_all_applied(db)
        # The dangerous one: a blocking index on a big table, in a single transaction.
        self.make_big(db, 'accounts', "g, 'user' || g || '@example.com', 'user' || g")
        p = self.apply(mode, db, '006_accounts_name_idx',
                       "ALTER TABLE accounts ADD COLUMN nick text;\n"
                       "CREATE INDEX accounts_name ON accounts (name);\n")
        # Two rules object (the index blocks writes; it also runs while the ALTER's
        # ACCESS EXCLUSIVE lock is held); whichever the verdict names, it must be one.
        self.assertDenied(p)
        self.assertRegex(p.stderr, r'ddlguard rule: (require-concurrent-index|'
                                   r'long-statement-under-access-exclusive)')
        self.assertIn('HINT:', p.stderr)
        self.assertNotIn('nick', self.columns(db, 'accounts'))     # -1: nothing of it stays
        self.assertNotIn('accounts_name', self.indexes(db, 'accounts'))

    def test_plain(self):
        self.scenario('plain')

    def test_tls_both_legs(self):
        self.scenario('tls')

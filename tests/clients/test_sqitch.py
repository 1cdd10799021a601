"""Sqitch 1.3 (Debian sqitch + libdbd-pg-perl) through ddlguard.

The project is made the way its users make one: `sqitch init --engine pg`, then `sqitch add`
for each change (deploy/, revert/ and verify/ scripts from sqitch's templates, which the test
then fills in). The target is SQITCH_TARGET=db:pg://user:pass@host:port/db?sslmode=...;
sqitch's registry (schema sqitch, bookkeeping table sqitch.changes) lives in the same database.

How sqitch runs a change (App::Sqitch::Engine::pg and Engine::deploy_change): its own DBD::Pg
connection opens a transaction and LOCKs sqitch.changes, then `psql --file deploy/x.sql` runs
the script on a second connection - with ON_ERROR_STOP=1 but WITHOUT --single-transaction - and
the first connection records the change and commits. So sqitch itself never wraps a script in
a transaction: the BEGIN; ... COMMIT; that `sqitch add`'s template puts in each script does.
A non-transactional change is simply a script without BEGIN/COMMIT (change 4, CREATE UNIQUE
INDEX CONCURRENTLY, and its revert, DROP INDEX CONCURRENTLY), and a script may COMMIT
part-way (change 5 commits the NOT VALID foreign key, then validates it in a transaction of
its own; validating it in the same transaction would scan orders under the ADD's lock, rule
validate-in-same-transaction). The price, as for any script without one transaction: if a
later statement failed, the earlier ones would stay and sqitch would not record the change.
"""

import os
import shutil

from common import ROLE, PASSWORD, ClientCase, proxy_only, run

# (change, note, deploy, revert, verify); the template's BEGIN/COMMIT are kept where they help.
CHANGES = [
    ('accounts_orders', 'Accounts and orders tables',
     "BEGIN;\n\n"
     "CREATE TABLE accounts (id int PRIMARY KEY, email text NOT NULL);\n"
     "CREATE TABLE orders (id int PRIMARY KEY, account_id int);\n"
     "INSERT INTO accounts VALUES (1, 'a@example.com'), (2, 'b@example.com');\n"
     "INSERT INTO orders VALUES (1, 1), (2, 2);\n\n"
     "COMMIT;\n",
     "BEGIN;\n\nDROP TABLE orders;\nDROP TABLE accounts;\n\nCOMMIT;\n",
     "BEGIN;\n\nSELECT id, email FROM accounts WHERE false;\nSELECT id, account_id FROM orders WHERE false;\n\n"
     "ROLLBACK;\n"),
    ('accounts_email', 'Index accounts by email',
     "BEGIN;\n\nCREATE INDEX accounts_email ON accounts (email);\n\nCOMMIT;\n",
     "BEGIN;\n\nDROP INDEX accounts_email;\n\nCOMMIT;\n",
     "BEGIN;\n\nSELECT 1/count(*) FROM pg_indexes WHERE indexname = 'accounts_email';\n\nROLLBACK;\n"),
    ('accounts_name', 'Add accounts.name and backfill it',
     "BEGIN;\n\nALTER TABLE accounts ADD COLUMN name text;\n"
     "UPDATE accounts SET name = split_part(email, '@', 1);\n\nCOMMIT;\n",
     "BEGIN;\n\nALTER TABLE accounts DROP COLUMN name;\n\nCOMMIT;\n",
     "BEGIN;\n\nSELECT name FROM accounts WHERE false;\n\nROLLBACK;\n"),
    # No BEGIN/COMMIT: CREATE INDEX CONCURRENTLY cannot run inside a transaction block.
    ('accounts_email_unique', 'Unique email, built concurrently',
     "-- Not in a transaction: CREATE INDEX CONCURRENTLY cannot run in one.\n"
     "CREATE UNIQUE INDEX CONCURRENTLY accounts_email_unique ON accounts (email);\n",
     "DROP INDEX CONCURRENTLY accounts_email_unique;\n",
     "SELECT 1/count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid\n"
     " WHERE c.relname = 'accounts_email_unique' AND i.indisvalid;\n"),
    ('orders_account_fk', 'Foreign key orders -> accounts, validated separately',
     "BEGIN;\n\nALTER TABLE orders ADD CONSTRAINT orders_account_fk FOREIGN KEY (account_id)\n"
     "    REFERENCES accounts (id) NOT VALID;\n\nCOMMIT;\n\n"
     "-- In a transaction of its own: the scan runs under SHARE UPDATE EXCLUSIVE only.\n"
     "BEGIN;\n\nALTER TABLE orders VALIDATE CONSTRAINT orders_account_fk;\n\nCOMMIT;\n",
     "BEGIN;\n\nALTER TABLE orders DROP CONSTRAINT orders_account_fk;\n\nCOMMIT;\n",
     "BEGIN;\n\nSELECT 1/count(*) FROM pg_constraint WHERE conname = 'orders_account_fk' AND convalidated;\n\n"
     "ROLLBACK;\n"),
]
# The dangerous one: a blocking index build on a big table, in the template's transaction.
DANGEROUS = ('accounts_name_idx', 'Index accounts by name',
             "BEGIN;\n\nALTER TABLE accounts ADD COLUMN nick text;\n"
             "CREATE INDEX accounts_name ON accounts (name);\n\nCOMMIT;\n",
             "BEGIN;\n\nDROP INDEX accounts_name;\nALTER TABLE accounts DROP COLUMN nick;\n\nCOMMIT;\n",
             "BEGIN;\n\nSELECT nick FROM accounts WHERE false;\n\nROLLBACK;\n")

NAMES = [c[0] for c in CHANGES]


@proxy_only
class TestSqitch(ClientCase):
    tool = 'sqitch'

    def sqitch_env(self, mode, db):
        p = self.proxy_for(mode)
        ssl = 'require' if mode == 'tls' else 'disable'
        e = self.env(mode, db)
        e.update(SQITCH_TARGET=f'db:pg://{ROLE}:{PASSWORD}@{p.host}:{p.port}/{db}?sslmode={ssl}',
                 SQITCH_USER_CONFIG=os.path.join(self.workdir(mode), 'user.conf'),
                 SQITCH_FULLNAME='ddlguard tests', SQITCH_EMAIL='tests@example.com')
        return e

    def sqitch(self, mode, db, *args, target=True):
        d = self.workdir(mode)
        env = self.sqitch_env(mode, db)
        if not target:
            del env['SQITCH_TARGET']
        p = run(['sqitch'] + list(args), cwd=d, env=env, check=False, timeout=180)
        self.runs = getattr(self, 'runs', 0) + 1
        with open(os.path.join(d, f'sqitch-{self.runs}-{args[0]}.log'), 'w') as f:
            f.write(f'sqitch {" ".join(args)}\nexit {p.returncode}\n--- stdout\n{p.stdout}--- stderr\n{p.stderr}')
        return p

    def add(self, mode, db, change, note, deploy, revert, verify):
        p = self.sqitch(mode, db, 'add', change, '-n', note)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        d = self.workdir(mode)
        for kind, body in (('deploy', deploy), ('revert', revert), ('verify', verify)):
            path = os.path.join(d, kind, change + '.sql')
            with open(path) as f:
                header = f.read().split('\n\n')[0]          # "-- Deploy ddlg:change to pg"
            with open(path, 'w') as f:
                f.write(header + '\n\n' + body)

    def project(self, mode, db):
        shutil.rmtree(self.workdir(mode))
        # Without SQITCH_TARGET: sqitch 1.3.1's init dies with it set ("Missing required
        # arguments: name"); init is a one-off developer step anyway, not the pipeline's.
        p = self.sqitch(mode, db, 'init', 'ddlg', '--engine', 'pg', target=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        for c in CHANGES:
            self.add(mode, db, *c)

    def recorded(self, db):
        return [r[0] for r in self.rows(db, 'SELECT change FROM sqitch.changes ORDER BY committed_at')]

    def check_all_applied(self, db):
        self.assertEqual(self.tables(db), {'accounts', 'orders'})
        self.assertEqual(self.columns(db, 'accounts'), ['id', 'email', 'name'])
        self.assertEqual(self.indexes(db, 'accounts'),
                         {'accounts_pkey': True, 'accounts_email': True, 'accounts_email_unique': True})
        self.assertEqual(self.constraints(db, 'orders')['orders_account_fk'], ('f', True))
        self.assertEqual(self.rows(db, 'SELECT id, name FROM accounts ORDER BY id'), [(1, 'a'), (2, 'b')])
        self.assertEqual(self.recorded(db), NAMES)

    def scenario(self, mode):
        db = self.fresh_db(mode)
        self.project(mode, db)
        p = self.sqitch(mode, db, 'deploy', '--verify')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r'\+ orders_account_fk \.+ ok')
        self.check_all_applied(db)

        p = self.sqitch(mode, db, 'revert', '--to', '@HEAD^', '-y')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r'- orders_account_fk \.+ ok')
        self.assertIn('WARNING:', p.stderr)                 # drop-foreign-key warns (P2), via psql
        self.assertIn('ddlguard rule: drop-foreign-key', p.stderr)
        self.assertNotIn('orders_account_fk', self.constraints(db, 'orders'))
        self.assertEqual(self.recorded(db), NAMES[:-1])

        p = self.sqitch(mode, db, 'deploy', '--verify')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.check_all_applied(db)

        self.make_big(db, 'accounts', "g, 'user' || g || '@example.com', 'user' || g")
        self.add(mode, db, *DANGEROUS)
        p = self.sqitch(mode, db, 'deploy', '--verify')
        self.assertDenied(p)
        # psql (which sqitch runs the script with) prints ERROR, DETAIL and HINT to stderr.
        self.assertRegex(p.stderr, r'ddlguard rule: (require-concurrent-index|long-statement-under-access-exclusive)')
        self.assertIn('HINT:', p.stderr)
        self.assertIn('Deploy failed', p.stdout + p.stderr)
        self.assertNotIn('nick', self.columns(db, 'accounts'))    # the script's transaction rolled back
        self.assertNotIn('accounts_name', self.indexes(db, 'accounts'))
        self.assertEqual(self.recorded(db), NAMES)

    def test_plain(self):
        self.scenario('plain')

    def test_tls_both_legs(self):
        self.scenario('tls')

"""node-pg-migrate 7.9 (the CLI, up / down) through ddlguard.

The project's setup is node-pg-migrate's default one: the CLI reads DATABASE_URL, migrations
are CommonJS files in ./migrations named <13-digit timestamp>_<name>.js (what
`node-pg-migrate create` writes), and the CLI's defaults stay as they are (a run's pending
migrations share one transaction, --single-transaction; a migration that calls
pgm.noTransaction() breaks out of it). Only the connection string points at ddlguard. With
TLS, the URL asks node-postgres to verify ddlguard's certificate against the test CA
(sslmode=verify-full&sslrootcert=...): node-postgres treats a bare sslmode=require as
verify-full against the system CAs, which do not know it.
"""

import os
import shutil

from common import ClientCase, PASSWORD, ROLE, proxy_only, run

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_MODULES = os.path.join(HERE, 'node', 'node_modules')
NODE_PG_MIGRATE = os.path.join(NODE_MODULES, '.bin', 'node-pg-migrate')

# The five migrations, in node-pg-migrate's format. 004 builds its index CONCURRENTLY, which
# cannot run in a transaction: pgm.noTransaction(). 005 adds the foreign key NOT VALID (the
# builder's addConstraint has no NOT VALID, hence pgm.sql) and validates it in a transaction
# of its own: with pgm.noTransaction() each statement runs on its own (autocommit).
# Validating it in the transaction that added it would hold both tables' locks for the whole
# scan (rule validate-in-same-transaction).
MIGRATIONS = [
    ('1700000000001_accounts', """\
exports.up = (pgm) => {
  pgm.createTable('accounts', { id: { type: 'integer', primaryKey: true }, email: { type: 'text', notNull: true } });
  pgm.createTable('orders', { id: { type: 'integer', primaryKey: true }, account_id: { type: 'integer' } });
  pgm.sql("INSERT INTO accounts VALUES (1, 'a@example.com'), (2, 'b@example.com')");
  pgm.sql('INSERT INTO orders VALUES (1, 1), (2, 2)');
};
exports.down = (pgm) => {
  pgm.dropTable('orders');
  pgm.dropTable('accounts');
};
"""),
    ('1700000000002_accounts_email', """\
exports.up = (pgm) => {
  pgm.createIndex('accounts', 'email', { name: 'accounts_email' });
};
exports.down = (pgm) => {
  pgm.dropIndex('accounts', 'email', { name: 'accounts_email' });
};
"""),
    ('1700000000003_accounts_name', """\
exports.up = (pgm) => {
  pgm.addColumn('accounts', { name: { type: 'text' } });
  pgm.sql("UPDATE accounts SET name = split_part(email, '@', 1)");
};
exports.down = (pgm) => {
  pgm.dropColumn('accounts', 'name');
};
"""),
    ('1700000000004_accounts_email_unique', """\
exports.up = (pgm) => {
  pgm.noTransaction();
  pgm.createIndex('accounts', 'email', { name: 'accounts_email_unique', unique: true, concurrently: true });
};
exports.down = (pgm) => {
  pgm.noTransaction();
  pgm.dropIndex('accounts', 'email', { name: 'accounts_email_unique', concurrently: true });
};
"""),
    ('1700000000005_orders_account_fk', """\
exports.up = (pgm) => {
  pgm.noTransaction();
  pgm.sql('ALTER TABLE orders ADD CONSTRAINT orders_account_fk FOREIGN KEY (account_id) '
          + 'REFERENCES accounts (id) NOT VALID');
  pgm.sql('ALTER TABLE orders VALIDATE CONSTRAINT orders_account_fk');
};
exports.down = (pgm) => {
  pgm.dropConstraint('orders', 'orders_account_fk');
};
"""),
]

# The dangerous one: a blocking index on a big table, in a transactional migration, after a
# column added in the same transaction.
DANGEROUS = ('1700000000006_accounts_name_idx', """\
exports.up = (pgm) => {
  pgm.addColumn('accounts', { nick: { type: 'text' } });
  pgm.createIndex('accounts', 'name', { name: 'accounts_name' });
};
exports.down = (pgm) => {
  pgm.dropIndex('accounts', 'name', { name: 'accounts_name' });
  pgm.dropColumn('accounts', 'nick');
};
""")

NAMES = [name for name, _ in MIGRATIONS]


@proxy_only
class TestNodePgMigrate(ClientCase):
    tool = 'node-pg-migrate'

    def project(self, mode):
        """A fresh project directory with its migrations/."""
        d = self.workdir(mode)
        shutil.rmtree(os.path.join(d, 'migrations'), ignore_errors=True)
        os.makedirs(os.path.join(d, 'migrations'))
        for name, js in MIGRATIONS:
            self.write_migration(mode, name, js)
        return d

    def write_migration(self, mode, name, js):
        with open(os.path.join(self.workdir(mode), 'migrations', name + '.js'), 'w') as f:
            f.write(js)

    def npm_env(self, mode, db):
        e = self.env(mode, db)
        if mode == 'tls':
            p = self.proxy_for(mode)
            e['DATABASE_URL'] = (f'postgresql://{ROLE}:{PASSWORD}@{p.host}:{p.port}/{db}'
                                 f'?sslmode=verify-full&sslrootcert={self.pg.certs.ca}')
        # The project directory lives outside the repository; the migrations require nothing,
        # but anything they would require resolves as from the project's node_modules.
        e['NODE_PATH'] = NODE_MODULES
        e['NO_COLOR'] = '1'
        e['FORCE_COLOR'] = '0'
        return e

    def migrate(self, mode, db, *args):
        return run([NODE_PG_MIGRATE] + list(args), check=False, cwd=self.workdir(mode),
                   env=self.npm_env(mode, db))

    def recorded(self, db):
        return [r[0] for r in self.rows(db, 'SELECT name FROM pgmigrations ORDER BY id')]

    def check_all_applied(self, db):
        self.assertEqual(self.tables(db), {'accounts', 'orders', 'pgmigrations'})
        self.assertEqual(self.columns(db, 'accounts'), ['id', 'email', 'name'])
        self.assertEqual(self.indexes(db, 'accounts'),
                         {'accounts_pkey': True, 'accounts_email': True, 'accounts_email_unique': True})
        self.assertEqual(self.constraints(db, 'orders')['orders_account_fk'], ('f', True))
        self.assertEqual(self.rows(db, 'SELECT id, name FROM accounts ORDER BY id'), [(1, 'a'), (2, 'b')])
        self.assertEqual(self.recorded(db), NAMES)

    def scenario(self, mode):
        db = self.fresh_db(mode)
        self.project(mode)
        p = self.migrate(mode, db, 'up')
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, 0, out)
        self.assertIn('Migrations complete!', out)
        self.assertNotIn('ddlguard rule:', out)
        self.check_all_applied(db)

        p = self.migrate(mode, db, 'down')           # the last migration only (count 1)
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, 0, out)
        self.assertIn('MIGRATION 1700000000005_orders_account_fk (DOWN)', out)
        self.assertNotIn('orders_account_fk', self.constraints(db, 'orders'))
        self.assertEqual(self.recorded(db), NAMES[:4])

        p = self.migrate(mode, db, 'up')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.check_all_applied(db)

        self.make_big(db, 'accounts', "g, 'user' || g || '@example.com', 'user' || g")
        self.write_migration(mode, *DANGEROUS)
        p = self.migrate(mode, db, 'up')
        out = p.stdout + p.stderr
        self.assertDenied(p)
        # Two rules object (the index blocks writes; it also runs while the ALTER's ACCESS
        # EXCLUSIVE lock is held); whichever the verdict names, it must be one. node-pg-migrate
        # prints the failing SQL and the whole node-postgres error, DETAIL and HINT included.
        self.assertRegex(out, r"detail: 'ddlguard rule: (require-concurrent-index|"
                              r"long-statement-under-access-exclusive)")
        self.assertRegex(out, r"hint: '\S")
        self.assertIn('CREATE INDEX "accounts_name" ON "accounts" ("name")', out)
        # Nothing of the migration stays and the bookkeeping table does not record it.
        self.assertNotIn('nick', self.columns(db, 'accounts'))
        self.assertNotIn('accounts_name', self.indexes(db, 'accounts'))
        self.assertEqual(self.recorded(db), NAMES)

    def test_plain(self):
        self.scenario('plain')

    def test_tls_both_legs(self):
        self.scenario('tls')

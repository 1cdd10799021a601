"""knex 3.1 (the CLI, migrate:latest / migrate:down) through ddlguard.

The project's setup is the one knex's docs show: a knexfile.js with client 'pg' and the
connection taken from DATABASE_URL, migrations as CommonJS files exporting up/down. Only the
connection string points at ddlguard. With TLS, the URL asks node-postgres to verify
ddlguard's certificate against the test CA (sslmode=verify-full&sslrootcert=...): node-postgres
treats a bare sslmode=require as verify-full against the system CAs, which do not know it.
"""

import os
import re
import shutil

from common import ClientCase, PASSWORD, ROLE, proxy_only, run

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_MODULES = os.path.join(HERE, 'node', 'node_modules')
KNEX = os.path.join(NODE_MODULES, '.bin', 'knex')

KNEXFILE = """\
module.exports = {
  client: 'pg',
  connection: process.env.DATABASE_URL,
  migrations: { directory: './migrations', tableName: 'knex_migrations' },
};
"""

# The five migrations, in knex's format. Each runs in a transaction of its own (knex's
# default) unless it exports config = { transaction: false }: 004 builds its index
# CONCURRENTLY, which cannot run in a transaction, and 005 adds the foreign key NOT VALID and
# then validates it in a transaction of its own (each knex.raw outside a migration transaction
# autocommits): validating it in the transaction that added it would hold both tables' locks
# for the whole scan (rule validate-in-same-transaction).
MIGRATIONS = [
    ('001_accounts', """\
exports.up = async (knex) => {
  await knex.schema.createTable('accounts', (t) => {
    t.integer('id').primary();
    t.text('email').notNullable();
  });
  await knex.schema.createTable('orders', (t) => {
    t.integer('id').primary();
    t.integer('account_id');
  });
  await knex('accounts').insert([{ id: 1, email: 'a@example.com' }, { id: 2, email: 'b@example.com' }]);
  await knex('orders').insert([{ id: 1, account_id: 1 }, { id: 2, account_id: 2 }]);
};
exports.down = async (knex) => {
  await knex.schema.dropTable('orders');
  await knex.schema.dropTable('accounts');
};
"""),
    ('002_accounts_email', """\
exports.up = (knex) => knex.schema.alterTable('accounts', (t) => t.index(['email'], 'accounts_email'));
exports.down = (knex) => knex.schema.alterTable('accounts', (t) => t.dropIndex(['email'], 'accounts_email'));
"""),
    ('003_accounts_name', """\
exports.up = async (knex) => {
  await knex.schema.alterTable('accounts', (t) => t.text('name'));
  await knex('accounts').update({ name: knex.raw("split_part(email, '@', 1)") });
};
exports.down = (knex) => knex.schema.alterTable('accounts', (t) => t.dropColumn('name'));
"""),
    ('004_accounts_email_unique', """\
exports.config = { transaction: false };
exports.up = (knex) =>
  knex.raw('CREATE UNIQUE INDEX CONCURRENTLY accounts_email_unique ON accounts (email)');
exports.down = (knex) => knex.raw('DROP INDEX CONCURRENTLY accounts_email_unique');
"""),
    ('005_orders_account_fk', """\
exports.config = { transaction: false };
exports.up = async (knex) => {
  await knex.raw('ALTER TABLE orders ADD CONSTRAINT orders_account_fk FOREIGN KEY (account_id) '
                 + 'REFERENCES accounts (id) NOT VALID');
  await knex.raw('ALTER TABLE orders VALIDATE CONSTRAINT orders_account_fk');
};
exports.down = (knex) => knex.raw('ALTER TABLE orders DROP CONSTRAINT orders_account_fk');
"""),
]

# The dangerous one: a blocking index on a big table, in knex's default migration
# transaction, after a column added in the same transaction.
DANGEROUS = ('006_accounts_name_idx', """\
exports.up = async (knex) => {
  await knex.raw('ALTER TABLE accounts ADD COLUMN nick text');
  await knex.raw('CREATE INDEX accounts_name ON accounts (name)');
};
exports.down = async (knex) => {
  await knex.raw('DROP INDEX accounts_name');
  await knex.raw('ALTER TABLE accounts DROP COLUMN nick');
};
""")

NAMES = [name + '.js' for name, _ in MIGRATIONS]


@proxy_only
class TestKnex(ClientCase):
    tool = 'knex'

    def project(self, mode):
        """A fresh project directory: knexfile.js and migrations/."""
        d = self.workdir(mode)
        shutil.rmtree(os.path.join(d, 'migrations'), ignore_errors=True)
        os.makedirs(os.path.join(d, 'migrations'))
        with open(os.path.join(d, 'knexfile.js'), 'w') as f:
            f.write(KNEXFILE)
        for name, js in MIGRATIONS:
            self.write_migration(mode, name, js)
        return d

    def write_migration(self, mode, name, js):
        with open(os.path.join(self.workdir(mode), 'migrations', name + '.js'), 'w') as f:
            f.write(js)

    def knex_env(self, mode, db):
        e = self.env(mode, db)
        if mode == 'tls':
            p = self.proxy_for(mode)
            e['DATABASE_URL'] = (f'postgresql://{ROLE}:{PASSWORD}@{p.host}:{p.port}/{db}'
                                 f'?sslmode=verify-full&sslrootcert={self.pg.certs.ca}')
        # The project directory lives outside the repository: knex (the CLI looks for a local
        # install from the knexfile's directory) and pg are found through NODE_PATH, as they
        # would be in the project's own node_modules.
        e['NODE_PATH'] = NODE_MODULES
        e['NO_COLOR'] = '1'
        e['FORCE_COLOR'] = '0'
        return e

    def knex(self, mode, db, *args):
        return run([KNEX] + list(args), check=False, cwd=self.workdir(mode), env=self.knex_env(mode, db))

    def recorded(self, db):
        return [r[0] for r in self.rows(db, 'SELECT name FROM knex_migrations ORDER BY id')]

    def check_all_applied(self, db):
        self.assertEqual(self.tables(db), {'accounts', 'orders', 'knex_migrations', 'knex_migrations_lock'})
        self.assertEqual(self.columns(db, 'accounts'), ['id', 'email', 'name'])
        self.assertEqual(self.indexes(db, 'accounts'),
                         {'accounts_pkey': True, 'accounts_email': True, 'accounts_email_unique': True})
        self.assertEqual(self.constraints(db, 'orders')['orders_account_fk'], ('f', True))
        self.assertEqual(self.rows(db, 'SELECT id, name FROM accounts ORDER BY id'), [(1, 'a'), (2, 'b')])
        self.assertEqual(self.recorded(db), NAMES)
        self.assertEqual(self.rows(db, 'SELECT is_locked FROM knex_migrations_lock'), [(0,)])

    def scenario(self, mode):
        db = self.fresh_db(mode)
        self.project(mode)
        p = self.knex(mode, db, 'migrate:latest', '--verbose')
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, 0, out)
        self.assertIn('Batch 1 run: 5 migrations', out)
        self.assertNotIn('ddlguard rule:', out)
        self.check_all_applied(db)

        # migrate:rollback would undo the whole batch (all five); migrate:down undoes the last.
        p = self.knex(mode, db, 'migrate:down')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn('005_orders_account_fk.js', p.stdout)
        self.assertNotIn('orders_account_fk', self.constraints(db, 'orders'))
        self.assertEqual(self.recorded(db), NAMES[:4])

        p = self.knex(mode, db, 'migrate:latest')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn('Batch 2 run: 1 migrations', p.stdout)
        self.check_all_applied(db)

        self.make_big(db, 'accounts', "g, 'user' || g || '@example.com', 'user' || g")
        self.write_migration(mode, *DANGEROUS)
        p = self.knex(mode, db, 'migrate:latest')
        out = p.stdout + p.stderr
        # knex prints the error's message (prefixed with the failing SQL), its DETAIL (where
        # ddlguard names the rule) and its stack, but never the HINT: knex's CLI exit() prints
        # only err.message, err.detail and err.stack, and has no flag that prints more
        # (--verbose only lists migration names, --debug logs queries, not errors). The hint
        # reaches node-postgres (err.hint) and is lost in the CLI.
        self.assertDenied(p)
        m = re.search(r'ddlguard rule: (require-concurrent-index|long-statement-under-access-exclusive)', out)
        self.assertTrue(m, out[-3000:])
        self.assertIn('CREATE INDEX accounts_name ON accounts (name)', out)
        self.assertIn('migration file "006_accounts_name_idx.js" failed', out)
        # Nothing of the migration stays: knex rolled back its transaction, the bookkeeping
        # table does not record it and the lock is released.
        self.assertNotIn('nick', self.columns(db, 'accounts'))
        self.assertNotIn('accounts_name', self.indexes(db, 'accounts'))
        self.assertEqual(self.recorded(db), NAMES)
        self.assertEqual(self.rows(db, 'SELECT is_locked FROM knex_migrations_lock'), [(0,)])

    def test_plain(self):
        self.scenario('plain')

    def test_tls_both_legs(self):
        self.scenario('tls')

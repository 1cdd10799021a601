"""ActiveRecord 6.1 migrations (Debian ruby-activerecord + ruby-pg) run by rake through ddlguard.

No Rails: a standalone Rakefile connects with ActiveRecord::Base.establish_connection(DATABASE_URL)
and defines db:migrate and db:rollback on ActiveRecord::MigrationContext, the same context Rails'
own tasks use. Migrations are db/migrate/<version>_<name>.rb classes inheriting
ActiveRecord::Migration[6.1]; the bookkeeping table is schema_migrations.

Each migration runs in a transaction of its own unless it calls disable_ddl_transaction!, which
migration 4 (CREATE UNIQUE INDEX CONCURRENTLY via add_index ... algorithm: :concurrently) and
migration 5 do. Migration 5 adds the foreign key NOT VALID in an explicit transaction block and
validates it after that COMMIT, in autocommit: validating in the transaction that added it would
scan orders under the ADD's lock (rule validate-in-same-transaction).
"""

import os
import shutil

from common import ClientCase, proxy_only, run

RAKEFILE = '''\
require 'logger'
require 'active_record'

task :environment do
  ActiveRecord::Base.logger = Logger.new($stdout) if ENV['VERBOSE_SQL']
  ActiveRecord::Base.establish_connection(ENV.fetch('DATABASE_URL'))
end

def migration_context
  ActiveRecord::MigrationContext.new(['db/migrate'], ActiveRecord::SchemaMigration)
end

namespace :db do
  desc 'Apply every pending migration'
  task migrate: :environment do
    migration_context.migrate
  end

  desc 'Roll back the last migration (STEP=n for more)'
  task rollback: :environment do
    migration_context.rollback((ENV['STEP'] || 1).to_i)
  end
end
'''

MIGRATIONS = [
    ('20240101000001', 'create_accounts_and_orders', '''\
class CreateAccountsAndOrders < ActiveRecord::Migration[6.1]
  def up
    create_table :accounts, id: false do |t|
      t.integer :id, null: false, primary_key: true
      t.text :email, null: false
    end
    create_table :orders, id: false do |t|
      t.integer :id, null: false, primary_key: true
      t.integer :account_id
    end
    execute "INSERT INTO accounts (id, email) VALUES (1, 'a@example.com'), (2, 'b@example.com')"
    execute "INSERT INTO orders (id, account_id) VALUES (1, 1), (2, 2)"
  end

  def down
    drop_table :orders
    drop_table :accounts
  end
end
'''),
    ('20240101000002', 'add_accounts_email_index', '''\
class AddAccountsEmailIndex < ActiveRecord::Migration[6.1]
  def change
    add_index :accounts, :email, name: 'accounts_email'
  end
end
'''),
    ('20240101000003', 'add_accounts_name', '''\
class AddAccountsName < ActiveRecord::Migration[6.1]
  def up
    add_column :accounts, :name, :text
    execute "UPDATE accounts SET name = split_part(email, '@', 1)"
  end

  def down
    remove_column :accounts, :name
  end
end
'''),
    ('20240101000004', 'add_accounts_email_unique', '''\
class AddAccountsEmailUnique < ActiveRecord::Migration[6.1]
  # CREATE INDEX CONCURRENTLY cannot run inside a transaction block.
  disable_ddl_transaction!

  def change
    add_index :accounts, :email, unique: true, name: 'accounts_email_unique', algorithm: :concurrently
  end
end
'''),
    ('20240101000005', 'add_orders_account_fk', '''\
class AddOrdersAccountFk < ActiveRecord::Migration[6.1]
  # The NOT VALID constraint commits first; VALIDATE then runs in a transaction of its own.
  disable_ddl_transaction!

  def up
    transaction do
      add_foreign_key :orders, :accounts, column: :account_id, name: 'orders_account_fk', validate: false
    end
    validate_foreign_key :orders, name: 'orders_account_fk'
  end

  def down
    remove_foreign_key :orders, name: 'orders_account_fk'
  end
end
'''),
]

# The dangerous one: a blocking index build on a big table, in the default DDL transaction.
DANGEROUS = ('20240101000006', 'add_accounts_name_index', '''\
class AddAccountsNameIndex < ActiveRecord::Migration[6.1]
  def change
    add_column :accounts, :nick, :text
    add_index :accounts, :name, name: 'accounts_name'
  end
end
''')

VERSIONS = [m[0] for m in MIGRATIONS]


@proxy_only
class TestActiveRecord(ClientCase):
    tool = 'activerecord'

    def project(self, mode):
        d = self.workdir(mode)
        shutil.rmtree(d)
        os.makedirs(os.path.join(d, 'db', 'migrate'))
        with open(os.path.join(d, 'Rakefile'), 'w') as f:
            f.write(RAKEFILE)
        for m in MIGRATIONS:
            self.write_migration(d, *m)
        return d

    def write_migration(self, d, version, name, source):
        with open(os.path.join(d, 'db', 'migrate', f'{version}_{name}.rb'), 'w') as f:
            f.write(source)

    def rake(self, d, mode, db, task):
        # A failed migration: rake prints "rake aborted!" and the exception's message, which
        # is PG's whole error (ERROR, DETAIL and HINT lines). Each run's output is kept in d.
        p = run(['rake', task], cwd=d, env=self.env(mode, db), check=False, timeout=180)
        self.runs = getattr(self, 'runs', 0) + 1
        with open(os.path.join(d, f'rake-{self.runs}-{task.replace(":", "-")}.log'), 'w') as f:
            f.write(f'exit {p.returncode}\n--- stdout\n{p.stdout}--- stderr\n{p.stderr}')
        return p

    def recorded(self, db):
        return [r[0] for r in self.rows(db, 'SELECT version FROM schema_migrations ORDER BY version')]

    def check_all_applied(self, db):
        self.assertEqual(self.tables(db), {'accounts', 'orders', 'schema_migrations', 'ar_internal_metadata'})
        self.assertEqual(self.columns(db, 'accounts'), ['id', 'email', 'name'])
        self.assertEqual(self.indexes(db, 'accounts'),
                         {'accounts_pkey': True, 'accounts_email': True, 'accounts_email_unique': True})
        self.assertEqual(self.constraints(db, 'orders')['orders_account_fk'], ('f', True))
        self.assertEqual(self.rows(db, 'SELECT id, name FROM accounts ORDER BY id'), [(1, 'a'), (2, 'b')])
        self.assertEqual(self.recorded(db), VERSIONS)

    def scenario(self, mode):
        db = self.fresh_db(mode)
        d = self.project(mode)
        p = self.rake(d, mode, db, 'db:migrate')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn('AddOrdersAccountFk: migrated', p.stdout)
        self.check_all_applied(db)

        p = self.rake(d, mode, db, 'db:rollback')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn('AddOrdersAccountFk: reverted', p.stdout)
        self.assertIn('WARNING:', p.stderr)                 # drop-foreign-key warns (P2)
        self.assertIn('ddlguard rule: drop-foreign-key', p.stderr)
        self.assertNotIn('orders_account_fk', self.constraints(db, 'orders'))
        self.assertEqual(self.recorded(db), VERSIONS[:-1])

        p = self.rake(d, mode, db, 'db:migrate')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.check_all_applied(db)

        self.make_big(db, 'accounts', "g, 'user' || g || '@example.com', 'user' || g")
        self.write_migration(d, *DANGEROUS)
        p = self.rake(d, mode, db, 'db:migrate')
        out = p.stdout + p.stderr
        self.assertDenied(p)
        self.assertRegex(out, r'ddlguard rule: (require-concurrent-index|long-statement-under-access-exclusive)')
        self.assertIn('HINT:', p.stderr)
        self.assertIn('ActiveRecord::StatementInvalid', p.stderr)
        self.assertNotIn('nick', self.columns(db, 'accounts'))    # the DDL transaction rolled back
        self.assertNotIn('accounts_name', self.indexes(db, 'accounts'))
        self.assertEqual(self.recorded(db), VERSIONS)

    def test_plain(self):
        self.scenario('plain')

    def test_tls_both_legs(self):
        self.scenario('tls')

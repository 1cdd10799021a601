"""Django 3.2 migrations (python3-django, psycopg2) through ddlguard.

A minimal project generated into the work directory: settings.py whose DATABASES comes from
the libpq environment (PGHOST, PGPORT, ...: the connection settings are the only thing that
points at ddlguard) and an app, `shop`, whose migrations use Django's own operations where
they exist (CreateModel, AddIndex, AddField) and RunSQL otherwise. Django runs each migration
in a transaction of its own unless the migration says `atomic = False`, which is how
CREATE INDEX CONCURRENTLY runs. Bookkeeping: the table django_migrations (app, name).
"""

import os
import shutil

from common import ClientCase, proxy_only, run

PYTHON = '/usr/bin/python3'     # Debian's python modules (django, psycopg2)

SETTINGS = '''import os

SECRET_KEY = 'ddlguard-clients-test'
INSTALLED_APPS = ['shop']
USE_TZ = True
DEFAULT_AUTO_FIELD = 'django.db.models.AutoField'
DATABASES = {
    'default': {
        'ENGINE': 'django.db.backends.postgresql',
        'HOST': os.environ['PGHOST'],
        'PORT': os.environ['PGPORT'],
        'NAME': os.environ['PGDATABASE'],
        'USER': os.environ['PGUSER'],
        'PASSWORD': os.environ['PGPASSWORD'],
        'OPTIONS': {'sslmode': os.environ.get('PGSSLMODE', 'prefer')},
    },
}
'''

HEADER = 'from django.db import migrations, models\n\n\n'

MIGRATIONS = [
    ('0001_accounts', '''class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel('Account', [
            ('id', models.IntegerField(primary_key=True)),
            ('email', models.TextField()),
        ], options={'db_table': 'accounts'}),
        migrations.CreateModel('Order', [
            ('id', models.IntegerField(primary_key=True)),
            ('account_id', models.IntegerField(null=True)),
        ], options={'db_table': 'orders'}),
        migrations.RunSQL([
            "INSERT INTO accounts VALUES (1, 'a@example.com'), (2, 'b@example.com')",
            "INSERT INTO orders VALUES (1, 1), (2, 2)",
        ], reverse_sql=migrations.RunSQL.noop),
    ]
'''),
    ('0002_accounts_email', '''class Migration(migrations.Migration):
    dependencies = [('shop', '0001_accounts')]
    operations = [
        migrations.AddIndex('account', models.Index(fields=['email'], name='accounts_email')),
    ]
'''),
    ('0003_accounts_name', '''class Migration(migrations.Migration):
    dependencies = [('shop', '0002_accounts_email')]
    operations = [
        migrations.AddField('account', 'name', models.TextField(null=True)),
        migrations.RunSQL("UPDATE accounts SET name = split_part(email, '@', 1)",
                          reverse_sql=migrations.RunSQL.noop),
    ]
'''),
    # Django 3.2's models.Index cannot be unique (and AddIndexConcurrently takes a
    # models.Index): RunSQL, in a non-atomic migration, since CONCURRENTLY refuses a transaction.
    ('0004_accounts_email_unique', '''class Migration(migrations.Migration):
    atomic = False
    dependencies = [('shop', '0003_accounts_name')]
    operations = [
        migrations.RunSQL(
            'CREATE UNIQUE INDEX CONCURRENTLY accounts_email_unique ON accounts (email)',
            reverse_sql='DROP INDEX CONCURRENTLY accounts_email_unique'),
    ]
'''),
    # Non-atomic too: each statement commits, so VALIDATE runs in a transaction of its own
    # (rule validate-in-same-transaction) and does not scan under the ADD's lock.
    ('0005_orders_account_fk', '''class Migration(migrations.Migration):
    atomic = False
    dependencies = [('shop', '0004_accounts_email_unique')]
    operations = [
        migrations.RunSQL([
            'ALTER TABLE orders ADD CONSTRAINT orders_account_fk FOREIGN KEY (account_id) '
            'REFERENCES accounts (id) NOT VALID',
            'ALTER TABLE orders VALIDATE CONSTRAINT orders_account_fk',
        ], reverse_sql='ALTER TABLE orders DROP CONSTRAINT orders_account_fk'),
    ]
'''),
]

# The dangerous one: a blocking index on a big table, in an atomic (transactional) migration.
DANGEROUS = ('0006_accounts_name_idx', '''class Migration(migrations.Migration):
    dependencies = [('shop', '0005_orders_account_fk')]
    operations = [
        migrations.AddField('account', 'nick', models.TextField(null=True)),
        migrations.AddIndex('account', models.Index(fields=['name'], name='accounts_name')),
    ]
''')


@proxy_only
class TestDjango(ClientCase):
    tool = 'django'

    def project(self, mode):
        d = self.workdir(mode)
        shutil.rmtree(d)
        for pkg in ('project', 'shop', os.path.join('shop', 'migrations')):
            os.makedirs(os.path.join(d, pkg))
            open(os.path.join(d, pkg, '__init__.py'), 'w').close()
        with open(os.path.join(d, 'project', 'settings.py'), 'w') as f:
            f.write(SETTINGS)
        return d

    def write(self, d, migration):
        name, body = migration
        with open(os.path.join(d, 'shop', 'migrations', name + '.py'), 'w') as f:
            f.write(HEADER + body)

    def django(self, mode, db, d, *args):
        env = dict(self.env(mode, db), DJANGO_SETTINGS_MODULE='project.settings', PYTHONPATH=d)
        return run([PYTHON, '-m', 'django'] + list(args) + ['--noinput'], check=False, cwd=d, env=env)

    def recorded(self, db):
        return [r[0] for r in self.rows(db, "SELECT name FROM django_migrations WHERE app = 'shop' ORDER BY id")]

    def check_all_applied(self, db):
        self.assertEqual(self.tables(db), {'accounts', 'orders', 'django_migrations'})
        self.assertEqual(self.columns(db, 'accounts'), ['id', 'email', 'name'])
        self.assertEqual(self.indexes(db, 'accounts'),
                         {'accounts_pkey': True, 'accounts_email': True, 'accounts_email_unique': True})
        self.assertEqual(self.constraints(db, 'orders')['orders_account_fk'], ('f', True))
        self.assertEqual(self.rows(db, 'SELECT id, name FROM accounts ORDER BY id'), [(1, 'a'), (2, 'b')])
        self.assertEqual(self.recorded(db), [name for name, _ in MIGRATIONS])

    def scenario(self, mode):
        db = self.fresh_db(mode)
        d = self.project(mode)
        for m in MIGRATIONS:
            self.write(d, m)
        p = self.django(mode, db, d, 'migrate')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        for name, _ in MIGRATIONS:
            self.assertIn(f'Applying shop.{name}... OK', p.stdout)
        self.check_all_applied(db)

        p = self.django(mode, db, d, 'migrate', 'shop', '0004')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn('Unapplying shop.0005_orders_account_fk... OK', p.stdout)
        # drop-foreign-key warns (P2). Django does not print server notices (psycopg2 keeps
        # them in connection.notices), so the warning is seen in ddlguard's log.
        self.assertIn('decision: warn ALTER TABLE orders', self.proxy_for(mode).log_text())
        self.assertNotIn('orders_account_fk', self.constraints(db, 'orders'))
        self.assertEqual(self.recorded(db), [name for name, _ in MIGRATIONS[:4]])

        p = self.django(mode, db, d, 'migrate')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn('Applying shop.0005_orders_account_fk... OK', p.stdout)
        self.check_all_applied(db)

        self.make_big(db, 'accounts', "g, 'user' || g || '@example.com', 'user' || g")
        self.write(d, DANGEROUS)
        p = self.django(mode, db, d, 'migrate')
        # Two rules object (the index blocks writes; it also runs while the ADD COLUMN's
        # ACCESS EXCLUSIVE lock is held); whichever the verdict names, it must be one.
        self.assertDenied(p)
        out = p.stdout + p.stderr
        # Django lets the database error through as a traceback; its message is psycopg2's,
        # which is libpq's full error text, HINT included.
        self.assertRegex(out, r'ddlguard rule: (require-concurrent-index|long-statement-under-access-exclusive)')
        self.assertRegex(out, r'ddlguard rule: [a-z-]+\.[^\n]*\nHINT:  \S')     # DETAIL line, then HINT
        self.assertNotIn('nick', self.columns(db, 'accounts'))
        self.assertNotIn('accounts_name', self.indexes(db, 'accounts'))
        self.assertEqual(self.recorded(db), [name for name, _ in MIGRATIONS])

    def test_plain(self):
        self.scenario('plain')

    def test_tls_both_legs(self):
        self.scenario('tls')

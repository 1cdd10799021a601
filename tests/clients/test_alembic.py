"""Alembic (python3-alembic, SQLAlchemy 1.4, psycopg2) through ddlguard.

The project is the stock one `alembic init` generates (alembic.ini, env.py, versions/); the
only change is the connection string, sqlalchemy.url in alembic.ini. Stock env.py runs every
pending migration in one transaction; a migration steps out of it with
`op.get_context().autocommit_block()` (Alembic's documented way to run CREATE INDEX
CONCURRENTLY). Bookkeeping: the table alembic_version, which holds the current head only.
"""

import os
import shutil

from common import ClientCase, proxy_only, run

PYTHON = '/usr/bin/python3'     # Debian's python modules (alembic, sqlalchemy, psycopg2)

HEADER = '''"""{doc}"""
from alembic import op
import sqlalchemy as sa

revision = {rev!r}
down_revision = {down!r}
branch_labels = None
depends_on = None

'''

MIGRATIONS = [
    ('0001', 'accounts', '''
def upgrade():
    # autoincrement=False: a plain int key, not SERIAL.
    accounts = op.create_table(
        'accounts',
        sa.Column('id', sa.Integer, primary_key=True, autoincrement=False),
        sa.Column('email', sa.Text, nullable=False))
    orders = op.create_table(
        'orders',
        sa.Column('id', sa.Integer, primary_key=True, autoincrement=False),
        sa.Column('account_id', sa.Integer))
    op.bulk_insert(accounts, [{'id': 1, 'email': 'a@example.com'}, {'id': 2, 'email': 'b@example.com'}])
    op.bulk_insert(orders, [{'id': 1, 'account_id': 1}, {'id': 2, 'account_id': 2}])


def downgrade():
    op.drop_table('orders')
    op.drop_table('accounts')
'''),
    ('0002', 'accounts_email', '''
def upgrade():
    op.create_index('accounts_email', 'accounts', ['email'])


def downgrade():
    op.drop_index('accounts_email', table_name='accounts')
'''),
    ('0003', 'accounts_name', '''
def upgrade():
    op.add_column('accounts', sa.Column('name', sa.Text))
    op.execute("UPDATE accounts SET name = split_part(email, '@', 1)")


def downgrade():
    op.drop_column('accounts', 'name')
'''),
    ('0004', 'accounts_email_unique', '''
def upgrade():
    # CREATE INDEX CONCURRENTLY cannot run in a transaction: commit the migration's
    # transaction, build the index in autocommit, then carry on in a new transaction.
    with op.get_context().autocommit_block():
        op.create_index('accounts_email_unique', 'accounts', ['email'], unique=True,
                        postgresql_concurrently=True)


def downgrade():
    with op.get_context().autocommit_block():
        op.drop_index('accounts_email_unique', table_name='accounts', postgresql_concurrently=True)
'''),
    ('0005', 'orders_account_fk', '''
def upgrade():
    op.create_foreign_key('orders_account_fk', 'orders', 'accounts', ['account_id'], ['id'],
                          postgresql_not_valid=True)
    # VALIDATE in a transaction of its own (rule validate-in-same-transaction): the
    # autocommit block commits the ADD ... NOT VALID first.
    with op.get_context().autocommit_block():
        op.execute('ALTER TABLE orders VALIDATE CONSTRAINT orders_account_fk')


def downgrade():
    op.drop_constraint('orders_account_fk', 'orders', type_='foreignkey')
'''),
]

# The dangerous one: a blocking index on a big table, in a transactional migration.
DANGEROUS = ('0006', 'accounts_name_idx', '''
def upgrade():
    op.add_column('accounts', sa.Column('nick', sa.Text))
    op.create_index('accounts_name', 'accounts', ['name'])


def downgrade():
    op.drop_index('accounts_name', table_name='accounts')
    op.drop_column('accounts', 'nick')
''')


@proxy_only
class TestAlembic(ClientCase):
    tool = 'alembic'

    def project(self, mode, db):
        """`alembic init` in a fresh directory; then point sqlalchemy.url at ddlguard."""
        d = self.workdir(mode)
        shutil.rmtree(d)
        os.makedirs(d)
        run([PYTHON, '-m', 'alembic', 'init', 'migrations'], cwd=d)
        ini = os.path.join(d, 'alembic.ini')
        with open(ini) as f:
            text = f.read()
        stock = 'sqlalchemy.url = driver://user:pass@localhost/dbname\n'
        self.assertIn(stock, text)
        # configparser interpolates '%': escape it.
        url = self.url(mode, db).replace('%', '%%')
        with open(ini, 'w') as f:
            f.write(text.replace(stock, f'sqlalchemy.url = {url}\n'))
        return d

    def write(self, d, migration, down):
        rev, slug, body = migration
        path = os.path.join(d, 'migrations', 'versions', f'{rev}_{slug}.py')
        with open(path, 'w') as f:
            f.write(HEADER.format(doc=slug, rev=rev, down=down) + body)

    def alembic(self, mode, db, d, *args):
        return run([PYTHON, '-m', 'alembic'] + list(args), check=False, cwd=d,
                   env=self.env(mode, db))

    def recorded(self, db):
        return [r[0] for r in self.rows(db, 'SELECT version_num FROM alembic_version')]

    def check_all_applied(self, db):
        self.assertEqual(self.tables(db), {'accounts', 'orders', 'alembic_version'})
        self.assertEqual(self.columns(db, 'accounts'), ['id', 'email', 'name'])
        self.assertEqual(self.indexes(db, 'accounts'),
                         {'accounts_pkey': True, 'accounts_email': True, 'accounts_email_unique': True})
        self.assertEqual(self.constraints(db, 'orders')['orders_account_fk'], ('f', True))
        self.assertEqual(self.rows(db, 'SELECT id, name FROM accounts ORDER BY id'), [(1, 'a'), (2, 'b')])
        self.assertEqual(self.recorded(db), ['0005'])

    def scenario(self, mode):
        db = self.fresh_db(mode)
        d = self.project(mode, db)
        down = None
        for m in MIGRATIONS:
            self.write(d, m, down)
            down = m[0]
        p = self.alembic(mode, db, d, 'upgrade', 'head')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        for rev, slug, _ in MIGRATIONS:
            self.assertRegex(p.stderr, rf'Running upgrade \S* *-> {rev}, {slug}')
        self.check_all_applied(db)

        p = self.alembic(mode, db, d, 'downgrade', '-1')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn('Running downgrade 0005 -> 0004', p.stderr)
        # drop-foreign-key warns (P2). SQLAlchemy does not print server notices (psycopg2
        # keeps them in connection.notices), so the warning is seen in ddlguard's log.
        self.assertIn('decision: warn ALTER TABLE orders', self.proxy_for(mode).log_text())
        self.assertNotIn('orders_account_fk', self.constraints(db, 'orders'))
        self.assertEqual(self.recorded(db), ['0004'])

        p = self.alembic(mode, db, d, 'upgrade', 'head')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.check_all_applied(db)

        self.make_big(db, 'accounts', "g, 'user' || g || '@example.com', 'user' || g")
        self.write(d, DANGEROUS, '0005')
        p = self.alembic(mode, db, d, 'upgrade', 'head')
        # Two rules object (the index blocks writes; it also runs while the ADD COLUMN's
        # ACCESS EXCLUSIVE lock is held); whichever the verdict names, it must be one.
        self.assertDenied(p)
        out = p.stdout + p.stderr
        # Alembic lets the exception through: SQLAlchemy's message carries psycopg2's, which
        # is libpq's full error text, HINT included.
        self.assertRegex(out, r'ddlguard rule: (require-concurrent-index|long-statement-under-access-exclusive)')
        self.assertRegex(out, r'ddlguard rule: [a-z-]+\.[^\n]*\nHINT:  \S')     # DETAIL line, then HINT
        self.assertNotIn('nick', self.columns(db, 'accounts'))
        self.assertNotIn('accounts_name', self.indexes(db, 'accounts'))
        self.assertEqual(self.recorded(db), ['0005'])

    def test_plain(self):
        self.scenario('plain')

    def test_tls_both_legs(self):
        self.scenario('tls')

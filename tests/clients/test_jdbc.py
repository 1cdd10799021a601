"""A Flyway-style runner on pgjdbc (tests/clients/jdbc/Migrate.java) through ddlguard.

Flyway itself is not packaged in Debian; Migrate does what it does on the wire with Debian's
pgjdbc: V<n>__<desc>.sql files applied in version order, each in one transaction (autocommit
off, extended protocol) together with its flyway_schema_history row, except a file whose
first line is `-- ddlguard:no-transaction` (Flyway's executeInTransaction=false), which runs in
autocommit; U<n>__<desc>.sql undoes the latest version (Flyway's `undo`, an UNDO_SQL row).
It is compiled with javac at test time, as tests/integration/harness.py does for its JDBC
clients."""

import os
import threading

from common import ClientCase, PASSWORD, ROLE, proxy_only, run
from harness import HERE as INTEGRATION, JDBC_JAR, subdir

JAVA_SRC = os.path.join(os.path.dirname(INTEGRATION), 'clients', 'jdbc', 'Migrate.java')
NO_TX = '-- ddlguard:no-transaction\n'

# The five migrations. V4 builds its index CONCURRENTLY, which cannot run in a transaction
# block: it is a non-transactional migration. V5 adds the foreign key NOT VALID and validates
# it in a transaction of its own (validating it in the transaction that added it would hold
# both tables' locks for the whole scan: rule validate-in-same-transaction), so it is
# non-transactional too: each statement commits on its own.
MIGRATIONS = {
    'V1__accounts.sql': "CREATE TABLE accounts (id int PRIMARY KEY, email text NOT NULL);\n"
                        "CREATE TABLE orders (id int PRIMARY KEY, account_id int);\n"
                        "INSERT INTO accounts VALUES (1, 'a@example.com'), (2, 'b@example.com');\n"
                        "INSERT INTO orders VALUES (1, 1), (2, 2);\n",
    'V2__accounts_email.sql': "CREATE INDEX accounts_email ON accounts (email);\n",
    'V3__accounts_name.sql': "ALTER TABLE accounts ADD COLUMN name text;\n"
                             "UPDATE accounts SET name = split_part(email, '@', 1);\n",
    'V4__accounts_email_unique.sql': NO_TX + "CREATE UNIQUE INDEX CONCURRENTLY accounts_email_unique "
                                             "ON accounts (email);\n",
    'V5__orders_account_fk.sql': NO_TX + "ALTER TABLE orders ADD CONSTRAINT orders_account_fk\n"
                                         "    FOREIGN KEY (account_id) REFERENCES accounts (id) NOT VALID;\n"
                                         "ALTER TABLE orders VALIDATE CONSTRAINT orders_account_fk;\n",
    'U5__orders_account_fk.sql': "ALTER TABLE orders DROP CONSTRAINT orders_account_fk;\n",
}
# The dangerous one: a blocking index on a big table, in a transactional migration, after a
# statement that must be rolled back with it.
# On a big table an index built CONCURRENTLY is what the rules ask for: it runs, with the
# library's lock_timeout set first (over the extended protocol, in a transaction of its own).
BIG_CONCURRENT = ('V6__accounts_lower_email.sql', "-- ddlguard:no-transaction\n"
                  "CREATE INDEX CONCURRENTLY accounts_lower_email ON accounts (lower(email));\n")
DANGEROUS = ('V7__accounts_name_idx.sql', "ALTER TABLE accounts ADD COLUMN nick text;\n"
                                          "CREATE INDEX accounts_name ON accounts (name);\n")

_lock = threading.Lock()
_classpath = []


def classpath():
    """Compiles Migrate.java against Debian's pgjdbc into the run's directory, once."""
    with _lock:
        if not _classpath:
            out = subdir('jdbc-migrate')
            run(['javac', '-cp', JDBC_JAR, '-d', out, JAVA_SRC])
            _classpath.append(out + ':' + JDBC_JAR)
        return _classpath[0]


@proxy_only
class TestJdbc(ClientCase):
    tool = 'jdbc'

    def jdbc_url(self, mode, db):
        p = self.proxy_for(mode)
        return f'jdbc:postgresql://{p.host}:{p.port}/{db}?sslmode={"require" if mode == "tls" else "disable"}'

    def migrate(self, mode, db, command='migrate'):
        # Flyway's own environment variables: the connection string is all that changes.
        env = dict(self.env(mode, db), FLYWAY_URL=self.jdbc_url(mode, db), FLYWAY_USER=ROLE,
                   FLYWAY_PASSWORD=PASSWORD, FLYWAY_LOCATIONS='filesystem:' + self.locations(mode))
        return run(['java', '-cp', classpath(), 'Migrate', command], check=False, env=env, timeout=180)

    def locations(self, mode):
        d = os.path.join(self.workdir(mode), 'sql')
        os.makedirs(d, exist_ok=True)
        return d

    def write(self, mode, name, sql):
        with open(os.path.join(self.locations(mode), name), 'w') as f:
            f.write(sql)

    def recorded(self, db):
        """The versions flyway_schema_history holds as applied: the latest successful row of
        each version is an SQL one (an undo adds an UNDO_SQL row)."""
        return [r[0] for r in self.rows(db, """
            SELECT h.version FROM flyway_schema_history h
            WHERE h.type = 'SQL' AND h.success AND NOT EXISTS (
                SELECT 1 FROM flyway_schema_history u
                WHERE u.version = h.version AND u.installed_rank > h.installed_rank)
            ORDER BY h.installed_rank""")]

    def history(self, db):
        return self.rows(db, 'SELECT installed_rank, version, type, script, success FROM flyway_schema_history '
                             'ORDER BY installed_rank')

    def check_all_applied(self, db):
        self.assertEqual(self.tables(db), {'accounts', 'orders', 'flyway_schema_history'})
        self.assertEqual(self.columns(db, 'accounts'), ['id', 'email', 'name'])
        self.assertEqual(self.indexes(db, 'accounts'),
                         {'accounts_pkey': True, 'accounts_email': True, 'accounts_email_unique': True})
        self.assertEqual(self.constraints(db, 'orders')['orders_account_fk'], ('f', True))
        self.assertEqual(self.recorded(db), ['1', '2', '3', '4', '5'])

    def scenario(self, mode):
        db = self.fresh_db(mode)
        for name, sql in MIGRATIONS.items():
            self.write(mode, name, sql)
        p = self.migrate(mode, db)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn('Successfully applied 5 migrations to schema "public", now at version v5', p.stdout)
        self.assertNotIn('WARNING', p.stderr)             # the five realistic migrations pass clean
        self.check_all_applied(db)
        self.assertEqual([r[1:] for r in self.history(db)],
                         [(str(v), 'SQL', n, True) for v, n in enumerate(sorted(
                             n for n in MIGRATIONS if n.startswith('V')), 1)])

        # Undo the last one: the FK goes, the history says version 5 is undone.
        p = self.migrate(mode, db, 'undo')
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn('Successfully undid 1 migration', p.stdout)
        # drop-foreign-key warns (P2): the notice reaches the tool as an SQLWarning.
        self.assertIn('DB: WARNING: DROP CONSTRAINT orders_account_fk', p.stderr)
        self.assertIn('DB: DETAIL: ddlguard rule: drop-foreign-key', p.stderr)
        self.assertIn('DB: HINT: Make sure nothing relies on the key', p.stderr)
        self.assertNotIn('orders_account_fk', self.constraints(db, 'orders'))
        self.assertEqual(self.recorded(db), ['1', '2', '3', '4'])
        self.assertEqual(self.history(db)[-1][1:], ('5', 'UNDO_SQL', 'U5__orders_account_fk.sql', True))

        # Migrate again: version 5 is pending again.
        p = self.migrate(mode, db)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn('Successfully applied 1 migration to schema "public", now at version v5', p.stdout)
        self.check_all_applied(db)
        p = self.migrate(mode, db)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn('is up to date', p.stdout)

        # The dangerous one, once accounts is big.
        self.make_big(db, 'accounts', "g, 'user' || g || '@example.com', 'user' || g")
        self.write(mode, *BIG_CONCURRENT)
        p = self.migrate(mode, db)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertTrue(self.indexes(db, 'accounts')['accounts_lower_email'])
        self.assertEqual(self.recorded(db), ['1', '2', '3', '4', '5', '6'])
        ranks = len(self.history(db))
        self.write(mode, *DANGEROUS)
        p = self.migrate(mode, db)
        self.assertDenied(p)
        # Two rules object (the index blocks writes; it also runs while the ALTER's ACCESS
        # EXCLUSIVE lock is held); whichever the verdict names, it must be one of them.
        # ddlguard's ErrorResponse: message, DETAIL starting with the rule id, and a HINT; the
        # tool prints each field of PSQLException.getServerErrorMessage().
        self.assertRegex(p.stderr, r'\nMessage    : ERROR: CREATE INDEX on accounts ')
        self.assertRegex(p.stderr, r'\nDetail     : ddlguard rule: (require-concurrent-index|'
                                   r'long-statement-under-access-exclusive)')
        self.assertIn('ERROR: Migration V7__accounts_name_idx.sql failed', p.stderr)
        self.assertIn('Statement  : CREATE INDEX accounts_name ON accounts (name)', p.stderr)
        self.assertRegex(p.stderr, r'\nHint       : .*CONCURRENTLY')   # both rules' hints say how
        # The transaction was rolled back: nothing of V7 remains, and the history has no row for it.
        self.assertNotIn('nick', self.columns(db, 'accounts'))
        self.assertNotIn('accounts_name', self.indexes(db, 'accounts'))
        self.assertEqual(len(self.history(db)), ranks)
        self.assertEqual(self.recorded(db), ['1', '2', '3', '4', '5', '6'])

    def test_plain(self):
        self.scenario('plain')

    def test_tls_both_legs(self):
        self.scenario('tls')

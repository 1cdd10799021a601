// A small Flyway-style migration runner on Debian's pgjdbc, for the clients suite: it stands in
// for Flyway (not packaged in Debian) and does what Flyway does on the wire.
//
//   java -cp DIR:/usr/share/java/postgresql.jar Migrate [-url=JDBC_URL] [-user=U] [-password=P]
//        [-locations=DIR] migrate|undo|info
//
// Each option may also come from the environment, as Flyway reads it: FLYWAY_URL, FLYWAY_USER,
// FLYWAY_PASSWORD, FLYWAY_LOCATIONS. The URL is a pgjdbc one,
// jdbc:postgresql://HOST:PORT/DB?sslmode=require.
//
// * Migrations are files V<version>__<description>.sql in the locations directory, applied in
//   version order; undo migrations are U<version>__<description>.sql.
// * The history table is Flyway's flyway_schema_history (installed_rank, version, description,
//   type, script, checksum, installed_by, installed_on, execution_time, success). An undo adds a
//   row of type UNDO_SQL, as Flyway Teams does; a version is applied when its latest successful
//   row is of type SQL. Checksums (CRC32 of the lines) of applied migrations are validated.
// * Each migration runs in one transaction (autocommit off) together with its history row,
//   unless its first line is the comment `-- ddlguard:no-transaction` (Flyway's
//   executeInTransaction=false): then every statement commits on its own, and a failure is
//   recorded with success = false, as Flyway does for a non-transactional migration.
// * Statements end with ';' at the end of a line; each runs with Statement.execute, so pgjdbc
//   uses the extended protocol (Parse/Bind/Describe/Execute/Sync).
// * Server notices (warnings) are printed to stderr. On an error the transaction is rolled
//   back, the error is printed to stderr with the server's detail and hint
//   (PSQLException.getServerErrorMessage()), and the exit status is 1.

import java.io.IOException;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.SQLWarning;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import java.util.zip.CRC32;

import org.postgresql.util.PSQLException;
import org.postgresql.util.PSQLWarning;
import org.postgresql.util.ServerErrorMessage;

public class Migrate {
    static final String TABLE = "flyway_schema_history";
    static final String NO_TRANSACTION = "-- ddlguard:no-transaction";
    static final Pattern NAME = Pattern.compile("([VU])(\\d+(?:[._]\\d+)*)__(.+)\\.sql");

    /** A failure already explained to the user: exit 1 without a stack trace. */
    static class Failure extends Exception {
        private static final long serialVersionUID = 1L;

        Failure(String message) {
            super(message);
        }
    }

    /** A migration file. */
    static class Script {
        final String kind, version, description, name;
        final Path path;
        final List<String> lines;
        final int checksum;
        final boolean transactional;

        Script(Path path, Matcher m) throws IOException {
            this.path = path;
            this.name = path.getFileName().toString();
            this.kind = m.group(1);
            this.version = m.group(2).replace('_', '.');
            this.description = m.group(3).replace('_', ' ');
            String text = new String(Files.readAllBytes(path), StandardCharsets.UTF_8);
            if (text.startsWith("\uFEFF")) text = text.substring(1);
            this.lines = List.of(text.split("\r\n|\r|\n", -1));
            CRC32 crc = new CRC32();                       // Flyway: CRC32 over the lines
            for (String line : lines) crc.update(line.getBytes(StandardCharsets.UTF_8));
            this.checksum = (int) crc.getValue();
            String first = lines.stream().filter(l -> !l.isBlank()).findFirst().orElse("");
            this.transactional = !first.trim().equals(NO_TRANSACTION);
        }

        /** Statements ending with ';' at the end of a line; returns {line number, text}. */
        List<Object[]> statements() {
            List<Object[]> out = new ArrayList<>();
            StringBuilder sb = new StringBuilder();
            int start = 0;
            for (int i = 0; i < lines.size(); i++) {
                String line = lines.get(i);
                boolean blank = line.isBlank() || line.trim().startsWith("--");
                if (sb.length() == 0 && blank) continue;
                if (sb.length() == 0) start = i + 1;
                sb.append(line).append('\n');
                String t = line.stripTrailing();
                if (!t.trim().startsWith("--") && t.endsWith(";")) {
                    String sql = sb.toString().stripTrailing();
                    out.add(new Object[] {start, sql.substring(0, sql.length() - 1)});
                    sb.setLength(0);
                }
            }
            if (sb.toString().lines().anyMatch(l -> !l.isBlank() && !l.trim().startsWith("--")))
                out.add(new Object[] {start, sb.toString().stripTrailing()});
            return out;
        }
    }

    static int compareVersions(String a, String b) {
        String[] x = a.split("\\."), y = b.split("\\.");
        for (int i = 0; i < Math.max(x.length, y.length); i++) {
            BigInteger p = i < x.length ? new BigInteger(x[i]) : BigInteger.ZERO;
            BigInteger q = i < y.length ? new BigInteger(y[i]) : BigInteger.ZERO;
            int c = p.compareTo(q);
            if (c != 0) return c;
        }
        return 0;
    }

    final Connection conn;
    final String user;
    final Path dir;

    Migrate(Connection conn, String user, Path dir) {
        this.conn = conn;
        this.user = user;
        this.dir = dir;
    }

    Map<String, Script> scripts(String kind) throws IOException, Failure {
        Map<String, Script> out = new TreeMap<>(Migrate::compareVersions);
        try (Stream<Path> files = Files.list(dir)) {
            for (Path p : (Iterable<Path>) files.sorted()::iterator) {
                Matcher m = NAME.matcher(p.getFileName().toString());
                if (!m.matches() || !m.group(1).equals(kind)) continue;
                Script s = new Script(p, m);
                if (out.containsKey(s.version))
                    throw new Failure("Found more than one migration with version " + s.version);
                out.put(s.version, s);
            }
        }
        return out;
    }

    // -- the history table

    boolean historyExists() throws SQLException {
        try (Statement st = conn.createStatement();
             ResultSet rs = st.executeQuery("SELECT to_regclass('" + TABLE + "') IS NOT NULL")) {
            rs.next();
            return rs.getBoolean(1);
        }
    }

    void createHistory() throws SQLException {
        if (historyExists()) return;
        System.out.println("Creating Schema History table " + TABLE + " ...");
        conn.setAutoCommit(false);
        try (Statement st = conn.createStatement()) {
            st.execute("CREATE TABLE " + TABLE + " (\n"
                    + "    installed_rank integer NOT NULL,\n"
                    + "    version varchar(50),\n"
                    + "    description varchar(200) NOT NULL,\n"
                    + "    type varchar(20) NOT NULL,\n"
                    + "    script varchar(1000) NOT NULL,\n"
                    + "    checksum integer,\n"
                    + "    installed_by varchar(100) NOT NULL,\n"
                    + "    installed_on timestamp NOT NULL DEFAULT now(),\n"
                    + "    execution_time integer NOT NULL,\n"
                    + "    success boolean NOT NULL,\n"
                    + "    CONSTRAINT " + TABLE + "_pk PRIMARY KEY (installed_rank)\n"
                    + ")");
            warnings(st);
            st.execute("CREATE INDEX " + TABLE + "_s_idx ON " + TABLE + " (success)");
            warnings(st);
            conn.commit();
        } catch (SQLException e) {
            rollbackQuietly();
            throw e;
        } finally {
            conn.setAutoCommit(true);
        }
    }

    /** One history row: version, type, success, checksum. */
    record Row(String version, String type, boolean success, Integer checksum, String script) {}

    List<Row> history() throws SQLException {
        List<Row> rows = new ArrayList<>();
        try (Statement st = conn.createStatement();
             ResultSet rs = st.executeQuery("SELECT version, type, success, checksum, script FROM " + TABLE
                     + " ORDER BY installed_rank")) {
            while (rs.next()) {
                int c = rs.getInt(4);
                rows.add(new Row(rs.getString(1), rs.getString(2), rs.getBoolean(3), rs.wasNull() ? null : c,
                        rs.getString(5)));
            }
        }
        return rows;
    }

    /** The latest row of each version, in version order. */
    Map<String, Row> latest() throws SQLException {
        Map<String, Row> out = new TreeMap<>(Migrate::compareVersions);
        for (Row r : history()) if (r.version() != null) out.put(r.version(), r);
        return out;
    }

    /** Versions applied now (latest row a successful SQL one), with their SQL row. */
    Map<String, Row> applied() throws SQLException, Failure {
        Map<String, Row> out = new TreeMap<>(Migrate::compareVersions);
        for (Row r : latest().values()) {
            if (!r.success())
                throw new Failure("Validate failed: Detected failed migration to version " + r.version()
                        + " (" + r.script() + "). Please remove any half-completed changes then run repair "
                        + "(delete its row from " + TABLE + ").");
            if (r.type().equals("SQL")) out.put(r.version(), r);
        }
        return out;
    }

    void record(Script s, String type, long millis, boolean success) throws SQLException {
        try (PreparedStatement ps = conn.prepareStatement("INSERT INTO " + TABLE
                + " (installed_rank, version, description, type, script, checksum, installed_by, execution_time,"
                + " success) VALUES ((SELECT coalesce(max(installed_rank), 0) + 1 FROM " + TABLE
                + "), ?, ?, ?, ?, ?, ?, ?, ?)")) {
            ps.setString(1, s.version);
            ps.setString(2, s.description);
            ps.setString(3, type);
            ps.setString(4, s.name);
            ps.setInt(5, s.checksum);
            ps.setString(6, user);
            ps.setInt(7, (int) millis);
            ps.setBoolean(8, success);
            ps.executeUpdate();
            warnings(ps);
        }
    }

    // -- running one script

    void run(Script s, String type) throws SQLException, Failure {
        long t0 = System.currentTimeMillis();
        List<Object[]> statements = s.statements();
        Object[] current = null;
        conn.setAutoCommit(!s.transactional);
        try (Statement st = conn.createStatement()) {
            for (Object[] stmt : statements) {
                current = stmt;
                st.execute((String) stmt[1]);
                warnings(st);
            }
            current = null;
            record(s, type, System.currentTimeMillis() - t0, true);
            if (s.transactional) conn.commit();
        } catch (SQLException e) {
            if (s.transactional) {
                rollbackQuietly();
            } else if (current != null) {
                // Flyway records a failed non-transactional migration: what ran has stayed.
                try {
                    record(s, type, System.currentTimeMillis() - t0, false);
                } catch (SQLException ignored) {
                    // the error below is what matters
                }
            }
            printError(s, e, current);
            throw new Failure(null);
        } finally {
            conn.setAutoCommit(true);
        }
    }

    void rollbackQuietly() {
        try {
            conn.rollback();
        } catch (SQLException ignored) {
            // the connection may be gone; the server rolls back then
        }
    }

    static void warnings(Statement st) throws SQLException {
        for (SQLWarning w = st.getWarnings(); w != null; w = w.getNextWarning()) {
            ServerErrorMessage m = w instanceof PSQLWarning ? ((PSQLWarning) w).getServerErrorMessage() : null;
            if (m == null) {
                System.err.println("WARNING: " + w.getMessage());
                continue;
            }
            System.err.println("DB: " + m.getSeverity() + ": " + m.getMessage()
                    + " (SQL State: " + m.getSQLState() + ")");
            if (m.getDetail() != null) System.err.println("DB: DETAIL: " + m.getDetail());
            if (m.getHint() != null) System.err.println("DB: HINT: " + m.getHint());
        }
        st.clearWarnings();
    }

    static void printError(Script s, SQLException e, Object[] stmt) {
        String title = (s.kind.equals("U") ? "Undo migration " : "Migration ") + s.name + " failed";
        System.err.println("ERROR: " + title);
        System.err.println("-".repeat(title.length() + 7));
        System.err.println("SQL State  : " + e.getSQLState());
        ServerErrorMessage m = e instanceof PSQLException ? ((PSQLException) e).getServerErrorMessage() : null;
        if (m != null) {
            System.err.println("Message    : " + m.getSeverity() + ": " + m.getMessage());
            if (m.getDetail() != null) System.err.println("Detail     : " + m.getDetail());
            if (m.getHint() != null) System.err.println("Hint       : " + m.getHint());
        } else {
            System.err.println("Message    : " + e.getMessage());
        }
        System.err.println("Location   : " + s.path);
        if (stmt != null) {
            System.err.println("Line       : " + stmt[0]);
            System.err.println("Statement  : " + stmt[1]);
        }
    }

    // -- commands

    int migrate() throws Exception {
        createHistory();
        Map<String, Script> scripts = scripts("V");
        Map<String, Row> applied = applied();
        String current = null;
        for (Row r : applied.values()) {
            current = r.version();
            Script s = scripts.get(r.version());
            if (s != null && r.checksum() != null && r.checksum() != s.checksum)
                throw new Failure("Validate failed: Migration checksum mismatch for migration version " + r.version()
                        + "\n-> Applied to database : " + r.checksum() + "\n-> Resolved locally    : " + s.checksum);
        }
        List<Script> pending = new ArrayList<>();
        for (Script s : scripts.values()) {
            if (applied.containsKey(s.version)) continue;
            if (current != null && compareVersions(s.version, current) < 0)
                throw new Failure("Validate failed: Detected resolved migration not applied to database: " + s.version);
            pending.add(s);
        }
        System.out.println("Current version of schema \"public\": "
                + (current == null ? "<< Empty Schema >>" : current));
        if (pending.isEmpty()) {
            System.out.println("Schema \"public\" is up to date. No migration necessary.");
            return 0;
        }
        for (Script s : pending) {
            System.out.println("Migrating schema \"public\" to version \"" + s.version + " - " + s.description + "\""
                    + (s.transactional ? "" : " [non-transactional]"));
            run(s, "SQL");
            current = s.version;
        }
        System.out.println("Successfully applied " + pending.size() + " migration" + (pending.size() == 1 ? "" : "s")
                + " to schema \"public\", now at version v" + current);
        return 0;
    }

    int undo() throws Exception {
        createHistory();
        Map<String, Row> applied = applied();
        if (applied.isEmpty()) {
            System.out.println("Schema \"public\" has no migration to undo.");
            return 0;
        }
        String version = null;
        for (String v : applied.keySet()) version = v;
        Script s = scripts("U").get(version);
        if (s == null) throw new Failure("Unable to undo migration to version " + version + ": no undo migration (U"
                + version + "__*.sql) found in " + dir);
        System.out.println("Undoing migration of schema \"public\" to version \"" + s.version + " - " + s.description
                + "\"" + (s.transactional ? "" : " [non-transactional]"));
        run(s, "UNDO_SQL");
        List<String> versions = new ArrayList<>(applied.keySet());
        System.out.println("Successfully undid 1 migration to schema \"public\", now at version "
                + (versions.size() > 1 ? "v" + versions.get(versions.size() - 2) : "<< Empty Schema >>"));
        return 0;
    }

    int info() throws Exception {
        Map<String, Row> latest = historyExists() ? latest() : new HashMap<>();
        Map<String, Script> all = new TreeMap<>(Migrate::compareVersions);
        all.putAll(scripts("V"));
        for (String v : latest.keySet()) all.putIfAbsent(v, null);
        System.out.println("| Version | Description | State |");
        for (Map.Entry<String, Script> e : all.entrySet()) {
            Row r = latest.get(e.getKey());
            String state = r == null ? "Pending"
                    : !r.success() ? "Failed" : r.type().equals("SQL") ? "Success" : "Undone";
            String desc = e.getValue() != null ? e.getValue().description : "<< missing >>";
            System.out.println("| " + e.getKey() + " | " + desc + " | " + state + " |");
        }
        return 0;
    }

    public static void main(String[] args) {
        Map<String, String> opt = new HashMap<>();
        for (String k : new String[] {"url", "user", "password", "locations"}) {
            String v = System.getenv("FLYWAY_" + k.toUpperCase());
            if (v != null) opt.put(k, v);
        }
        String command = null;
        for (String a : args) {
            if (a.startsWith("-") && a.contains("=")) {
                opt.put(a.substring(1, a.indexOf('=')), a.substring(a.indexOf('=') + 1));
            } else if (command == null) {
                command = a;
            } else {
                System.err.println("ERROR: unexpected argument " + a);
                System.exit(2);
            }
        }
        if (command == null || !List.of("migrate", "undo", "info").contains(command) || !opt.containsKey("url")) {
            System.err.println("usage: Migrate [-url=JDBC_URL] [-user=U] [-password=P] [-locations=DIR] "
                    + "migrate|undo|info");
            System.exit(2);
        }
        String loc = opt.getOrDefault("locations", "sql");
        if (loc.startsWith("filesystem:")) loc = loc.substring("filesystem:".length());
        Properties props = new Properties();
        if (opt.containsKey("user")) props.setProperty("user", opt.get("user"));
        if (opt.containsKey("password")) props.setProperty("password", opt.get("password"));
        int rc;
        try (Connection c = DriverManager.getConnection(opt.get("url"), props)) {
            Migrate m = new Migrate(c, opt.getOrDefault("user", ""), Paths.get(loc));
            rc = switch (command) {
                case "migrate" -> m.migrate();
                case "undo" -> m.undo();
                default -> m.info();
            };
        } catch (Failure f) {
            if (f.getMessage() != null) System.err.println("ERROR: " + f.getMessage());
            rc = 1;
        } catch (PSQLException e) {
            ServerErrorMessage m = e.getServerErrorMessage();
            System.err.println("ERROR: " + (m != null ? m.getSeverity() + ": " + m.getMessage() : e.getMessage()));
            if (m != null && m.getDetail() != null) System.err.println("Detail     : " + m.getDetail());
            if (m != null && m.getHint() != null) System.err.println("Hint       : " + m.getHint());
            rc = 1;
        } catch (Exception e) {
            System.err.println("ERROR: " + e);
            rc = 1;
        }
        System.exit(rc);
    }
}

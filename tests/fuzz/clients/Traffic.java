// What pgjdbc sends while tests/fuzz/capture.py records it: the extended protocol with
// unnamed and (after prepareThreshold) named statements, binary parameters, batches that
// pipeline many Bind/Execute before one Sync, portals fetched in pieces (PortalSuspended),
// savepoints, an error inside a transaction, COPY through CopyManager, LISTEN/NOTIFY, a
// cancel, the catalog queries of DatabaseMetaData, and every case of the rule library's
// tests (tests/lua/*.sql) as one Statement.execute (pgjdbc splits it into statements).
//
//   java -cp DIR:/usr/share/java/postgresql.jar Traffic JDBC_URL USER PASSWORD TESTS_LUA_DIR

import java.io.ByteArrayOutputStream;
import java.io.StringReader;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Savepoint;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

import org.postgresql.PGConnection;
import org.postgresql.copy.CopyManager;

public class Traffic {
    static void quietly(Statement st, String sql) {
        try {
            st.execute(sql);
        } catch (SQLException e) {
            // expected: the server's errors are seeds too
        }
    }

    static List<String> cases(String dir) throws Exception {
        List<String> out = new ArrayList<>();
        List<Path> files = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(Paths.get(dir), "*.sql")) {
            for (Path p : ds) files.add(p);
        }
        files.sort(null);
        for (Path p : files) {
            StringBuilder cur = null;
            for (String line : Files.readAllLines(p)) {
                if (line.trim().matches("--\\s*case:.*")) {
                    if (cur != null) out.add(cur.toString());
                    cur = new StringBuilder();
                } else if (cur != null) {
                    cur.append(line).append('\n');
                }
            }
            if (cur != null) out.add(cur.toString());
        }
        return out;
    }

    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.setProperty("user", args[1]);
        props.setProperty("password", args[2]);
        props.setProperty("prepareThreshold", "2");
        props.setProperty("ApplicationName", "fuzz pgjdbc");
        try (Connection c = DriverManager.getConnection(args[0], props)) {
            Statement st = c.createStatement();
            st.execute("DROP TABLE IF EXISTS jdbc_items");
            st.execute("CREATE TABLE jdbc_items (id bigserial PRIMARY KEY, name text, qty int, price numeric(10,2), "
                    + "data bytea, at timestamptz DEFAULT now())");
            try (PreparedStatement ps = c.prepareStatement(
                    "INSERT INTO jdbc_items (name, qty, price, data) VALUES (?, ?, ?, ?)")) {
                for (int i = 0; i < 60; i++) {
                    ps.setString(1, "item " + i);
                    ps.setInt(2, i);
                    ps.setBigDecimal(3, new java.math.BigDecimal(i + ".25"));
                    ps.setBytes(4, new byte[] { (byte) i, 0, (byte) 0xff });
                    ps.addBatch();
                }
                ps.executeBatch();
            }
            try (PreparedStatement ps = c.prepareStatement("SELECT * FROM jdbc_items WHERE qty > ? AND name LIKE ?")) {
                for (int i = 0; i < 4; i++) {
                    ps.setInt(1, i * 10);
                    ps.setString(2, "item%");
                    try (ResultSet rs = ps.executeQuery()) {
                        while (rs.next()) rs.getBytes("data");
                    }
                }
            }
            // A portal fetched 7 rows at a time needs a transaction.
            c.setAutoCommit(false);
            try (PreparedStatement ps = c.prepareStatement("SELECT id, name FROM jdbc_items ORDER BY id")) {
                ps.setFetchSize(7);
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) rs.getLong(1);
                }
            }
            st.execute("SET LOCAL lock_timeout = '3s'");
            st.execute("ALTER TABLE jdbc_items ADD COLUMN note text");
            Savepoint sp = c.setSavepoint("before_bad");
            quietly(st, "ALTER TABLE jdbc_items ADD COLUMN note text");
            c.rollback(sp);
            st.execute("CREATE INDEX jdbc_items_qty ON jdbc_items (qty)");
            c.commit();
            quietly(st, "SELECT 1/0");
            c.rollback();
            c.setAutoCommit(true);
            st.execute("CREATE INDEX CONCURRENTLY jdbc_items_name ON jdbc_items (name)");
            // A batch of DDL and DML through one Sync.
            st.addBatch("ALTER TABLE jdbc_items ADD COLUMN extra int");
            st.addBatch("UPDATE jdbc_items SET extra = qty * 2");
            st.addBatch("ALTER TABLE jdbc_items ALTER COLUMN extra SET NOT NULL");
            st.executeBatch();
            // COPY both ways.
            CopyManager cm = ((PGConnection) c).getCopyAPI();
            StringBuilder rows = new StringBuilder();
            for (int i = 0; i < 100; i++) rows.append("copied ").append(i).append('\t').append(i).append('\t').append(i * 2).append('\n');
            cm.copyIn("COPY jdbc_items (name, qty, extra) FROM STDIN", new StringReader(rows.toString()));
            cm.copyOut("COPY jdbc_items TO STDOUT (FORMAT binary)", new ByteArrayOutputStream());
            // LISTEN/NOTIFY.
            st.execute("LISTEN jdbc_channel");
            st.execute("NOTIFY jdbc_channel, 'from jdbc'");
            ((PGConnection) c).getNotifications(1000);
            // A cancel on a connection of its own.
            Thread canceller = new Thread(() -> {
                try {
                    Thread.sleep(500);
                    st.cancel();
                } catch (Exception e) {
                    // ignored
                }
            });
            canceller.start();
            quietly(st, "SELECT pg_sleep(5)");
            canceller.join();
            // DatabaseMetaData: the large catalog queries tools run.
            try (ResultSet rs = c.getMetaData().getTables(null, "public", "%", null)) {
                while (rs.next()) rs.getString(3);
            }
            try (ResultSet rs = c.getMetaData().getColumns(null, "public", "jdbc_items", "%")) {
                while (rs.next()) rs.getString(4);
            }
            // The rule library's cases, each in a transaction rolled back.
            for (String sql : cases(args[3])) {
                c.setAutoCommit(false);
                quietly(st, sql);
                c.rollback();
            }
            c.setAutoCommit(true);
            st.execute("DROP TABLE jdbc_items");
        }
        System.out.println("traffic: done");
    }
}

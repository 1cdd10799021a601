// An end-to-end JDBC client for the integration tests: pgjdbc speaks the extended protocol,
// switches to named server-side statements after prepareThreshold executions, uses named portals
// for fetchSize, and authenticates with SCRAM (or cleartext when ddlguard asks for it over TLS).
//
//   java -cp DIR:/usr/share/java/postgresql.jar JdbcSmoke JDBC_URL USER PASSWORD
//
// Prints one line per step and "JDBC OK" at the end; exits 1 on the first failed check.

import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Properties;

public class JdbcSmoke {
    static void check(boolean ok, String what) {
        if (!ok) {
            System.out.println("CHECK FAILED: " + what);
            System.exit(1);
        }
        System.out.println("ok: " + what);
    }

    static long count(Connection c, String table) throws SQLException {
        try (Statement st = c.createStatement();
             ResultSet rs = st.executeQuery("SELECT count(*) FROM " + table)) {
            rs.next();
            return rs.getLong(1);
        }
    }

    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.setProperty("user", args[1]);
        props.setProperty("password", args[2]);
        props.setProperty("prepareThreshold", "3");
        String table = "jdbc_smoke_" + ProcessHandle.current().pid();
        try (Connection c = DriverManager.getConnection(args[0], props)) {
            try (Statement st = c.createStatement()) {
                st.execute("DROP TABLE IF EXISTS " + table);
                st.execute("CREATE TABLE " + table + " (id int PRIMARY KEY, name text, "
                        + "amount numeric(12,2), flag boolean)");
            }
            check(true, "create table");

            try (PreparedStatement ins = c.prepareStatement(
                    "INSERT INTO " + table + " VALUES (?, ?, ?, ?)")) {
                for (int i = 1; i <= 20; i++) {         // past prepareThreshold: named statement
                    ins.setInt(1, i);
                    ins.setString(2, "name-" + i);
                    ins.setBigDecimal(3, new BigDecimal(i + ".25"));
                    ins.setBoolean(4, i % 2 == 0);
                    check(ins.executeUpdate() == 1, "insert " + i);
                }
                for (int i = 21; i <= 500; i++) {
                    ins.setInt(1, i);
                    ins.setString(2, i % 7 == 0 ? null : "name-" + i);
                    ins.setBigDecimal(3, new BigDecimal(i + ".25"));
                    ins.setBoolean(4, i % 2 == 0);
                    ins.addBatch();
                }
                int[] counts = ins.executeBatch();
                check(counts.length == 480, "batch insert");
            }

            try (PreparedStatement sel = c.prepareStatement(
                    "SELECT count(*), sum(id), sum(amount), count(name) FROM " + table + " WHERE id > ?")) {
                for (int k = 0; k < 10; k++) {
                    sel.setInt(1, k * 10);
                    try (ResultSet rs = sel.executeQuery()) {
                        rs.next();
                        long n = 500 - k * 10;
                        long lo = k * 10 + 1;
                        check(rs.getLong(1) == n, "select count " + k);
                        check(rs.getLong(2) == (lo + 500) * n / 2, "select sum " + k);
                        check(rs.getBigDecimal(3).compareTo(
                                new BigDecimal((lo + 500) * n / 2).add(new BigDecimal("0.25").multiply(
                                        new BigDecimal(n)))) == 0, "select numeric sum " + k);
                    }
                }
            }

            c.setAutoCommit(false);
            try (Statement st = c.createStatement()) {
                st.executeUpdate("INSERT INTO " + table + " SELECT g, 'tx', 0, false "
                        + "FROM generate_series(1001, 2000) g");
                st.executeUpdate("UPDATE " + table + " SET name = 'changed'");
                check(count(c, table) == 1500, "rows visible inside the transaction");
                c.rollback();
            }
            check(count(c, table) == 500, "rollback undid the transaction");
            try (Statement st = c.createStatement()) {
                st.setFetchSize(25);                    // a named portal, fetched 25 rows at a time
                long sum = 0, rows = 0;
                try (ResultSet rs = st.executeQuery("SELECT id FROM " + table + " ORDER BY id")) {
                    while (rs.next()) {
                        sum += rs.getInt(1);
                        rows++;
                    }
                }
                check(rows == 500 && sum == 500L * 501 / 2, "cursor fetch with fetchSize");
            }
            c.commit();
            c.setAutoCommit(true);

            try (Statement st = c.createStatement()) {
                st.executeQuery("SELECT 1 / 0");
                check(false, "division by zero raised");
            } catch (SQLException e) {
                check("22012".equals(e.getSQLState()), "division by zero SQLSTATE " + e.getSQLState());
            }
            check(count(c, table) == 500, "session usable after an error");
            try (Statement st = c.createStatement()) {
                st.execute("DROP TABLE " + table);
            }
        }
        System.out.println("JDBC OK");
    }
}

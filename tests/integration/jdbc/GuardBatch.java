import java.sql.*;

/**
 * A JDBC batch (pgjdbc pipelines it over the extended protocol) in one transaction, with a
 * statement in the middle that ddlguard's policy denies. Prints what the application sees:
 * the SQLSTATE of the batch failure, whether the table created earlier in the batch
 * survived the rollback, and the warnings of a warned statement (SQLWarning).
 * Usage: java GuardBatch JDBC_URL USER PASSWORD
 */
public class GuardBatch {
    public static void main(String[] a) throws Exception {
        try (Connection c = DriverManager.getConnection(a[0], a[1], a[2])) {
            c.setAutoCommit(false);
            try (Statement s = c.createStatement()) {
                s.addBatch("CREATE TABLE jdbc_batch_a (id int)");
                s.addBatch("DROP TABLE guard_keep");
                s.addBatch("CREATE TABLE jdbc_batch_b (id int)");
                try {
                    s.executeBatch();
                    System.out.println("batch ok");
                } catch (BatchUpdateException e) {
                    SQLException n = e.getNextException() != null ? e.getNextException() : e;
                    System.out.println("batch failed " + n.getSQLState());
                }
            }
            c.rollback();
            try (Statement s = c.createStatement();
                 ResultSet r = s.executeQuery("SELECT to_regclass('jdbc_batch_a') IS NULL, to_regclass('guard_keep') IS NOT NULL")) {
                r.next();
                System.out.println("rolled back " + r.getBoolean(1) + " kept " + r.getBoolean(2));
            }
            c.setAutoCommit(true);
            try (Statement s = c.createStatement()) {
                s.execute("CREATE TABLE IF NOT EXISTS jdbc_own (id int)");
                s.execute("CREATE INDEX jdbc_own_idx ON jdbc_own (id)");
                SQLWarning w = s.getWarnings();
                System.out.println("warning " + (w == null ? "none" : w.getSQLState() + " " + w.getMessage()));
                s.execute("DROP INDEX jdbc_own_idx");
            }
            try (PreparedStatement p = c.prepareStatement("DELETE FROM guard_items WHERE id = ?")) {
                p.setInt(1, 5);
                p.executeUpdate();
                System.out.println("delete ok");
            } catch (SQLException e) {
                System.out.println("delete failed " + e.getSQLState() + " " + e.getMessage().split("\n")[0]);
            }
        }
    }
}

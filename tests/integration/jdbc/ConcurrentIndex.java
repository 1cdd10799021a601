import java.sql.*;

/**
 * CREATE INDEX CONCURRENTLY over pgjdbc's extended protocol, in autocommit, where ddlguard
 * sets a lock_timeout first. Prints one line per step:
 *   alone <ok|SQLSTATE message>      the index alone (must work)
 *   batch <ok|SQLSTATE message>      INSERT then the index in one batch (one Sync: PostgreSQL
 *                                    refuses the index "within a pipeline", and the INSERT
 *                                    rolls back with it)
 *   rows N                           rows of the table after both
 * Usage: java ConcurrentIndex JDBC_URL USER PASSWORD TABLE
 */
public class ConcurrentIndex {
    static String attempt(Connection c, String... sql) {
        try (Statement s = c.createStatement()) {
            if (sql.length == 1)
                s.execute(sql[0]);
            else {
                for (String q : sql)
                    s.addBatch(q);
                s.executeBatch();
            }
            return "ok";
        } catch (SQLException e) {
            SQLException n = e.getNextException() != null ? e.getNextException() : e;
            return n.getSQLState() + " " + n.getMessage().split("\n")[0];
        }
    }

    public static void main(String[] a) throws Exception {
        String t = a[3];
        try (Connection c = DriverManager.getConnection(a[0], a[1], a[2])) {
            c.setAutoCommit(true);
            System.out.println("alone " + attempt(c, "CREATE INDEX CONCURRENTLY " + t + "_cic ON " + t + " (id)"));
            System.out.println("batch " + attempt(c, "INSERT INTO " + t + " VALUES (-1, 'batch')",
                                                  "CREATE INDEX CONCURRENTLY " + t + "_cic2 ON " + t + " (email)"));
            try (Statement s = c.createStatement();
                 ResultSet r = s.executeQuery("SELECT count(*) FROM " + t + " WHERE id = -1")) {
                r.next();
                System.out.println("rows " + r.getLong(1));
            }
        }
    }
}

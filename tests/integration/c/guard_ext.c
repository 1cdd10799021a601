/*
 * guard_ext: extended-protocol scenarios against ddlguard's policy enforcement, printed one
 * result per line so the Python test can compare them with what a user would observe.
 *   guard_ext CONNINFO params        DELETE with a parameter, denied by a policy
 *   guard_ext CONNINFO failed        the same inside an already failed transaction
 *   guard_ext CONNINFO pipeline      pipeline: INSERT, denied DELETE, INSERT, Sync, then more
 *   guard_ext CONNINFO prepared      PQprepare of the denied statement, then a good one
 *   guard_ext CONNINFO timeout SQL   PQexecParams(SQL) and report status and elapsed ms
 * Output lines: "<step> <status> <sqlstate|-> <message first line|rows>".
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static void show(const char *step, PGresult *r)
{
	ExecStatusType st = PQresultStatus(r);
	const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
	const char *det = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
	if (st == PGRES_TUPLES_OK && PQntuples(r) > 0)
		printf("%s %s - %s\n", step, PQresStatus(st), PQgetvalue(r, 0, 0));
	else
		printf("%s %s %s %s%s%s\n", step, PQresStatus(st), code ? code : "-", msg ? msg : "",
		       det ? " | " : "", det ? det : "");
	fflush(stdout);
}

static void exec(PGconn *c, const char *step, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	show(step, r);
	PQclear(r);
}

static double now_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return tv.tv_sec * 1000.0 + tv.tv_usec / 1000.0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: guard_ext CONNINFO SCENARIO [SQL]\n");
		return 2;
	}
	PGconn *c = PQconnectdb(argv[1]);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "connect: %s", PQerrorMessage(c));
		return 1;
	}
	const char *sc = argv[2];
	const char *one[1] = { "1" };
	if (!strcmp(sc, "params")) {
		PGresult *r = PQexecParams(c, "DELETE FROM guard_items WHERE id = $1", 1, NULL, one, NULL, NULL, 0);
		show("delete", r);
		PQclear(r);
		printf("status %c\n", PQtransactionStatus(c) == PQTRANS_IDLE ? 'I' : 'X');
		exec(c, "after", "SELECT count(*) FROM guard_items");
	} else if (!strcmp(sc, "failed")) {
		exec(c, "begin", "BEGIN");
		exec(c, "boom", "SELECT 1/0");
		PGresult *r = PQexecParams(c, "DELETE FROM guard_items WHERE id = $1", 1, NULL, one, NULL, NULL, 0);
		show("delete", r);
		PQclear(r);
		exec(c, "commit", "COMMIT");
		exec(c, "after", "SELECT count(*) FROM guard_items");
	} else if (!strcmp(sc, "pipeline")) {
		if (!PQenterPipelineMode(c)) {
			fprintf(stderr, "pipeline: %s", PQerrorMessage(c));
			return 1;
		}
		const char *two[1] = { "1000" };
		PQsendQueryParams(c, "INSERT INTO guard_items VALUES ($1)", 1, NULL, two, NULL, NULL, 0);
		PQsendQueryParams(c, "DELETE FROM guard_items WHERE id = $1", 1, NULL, one, NULL, NULL, 0);
		PQsendQueryParams(c, "INSERT INTO guard_items VALUES (1001)", 0, NULL, NULL, NULL, NULL, 0);
		PQpipelineSync(c);
		PQsendQueryParams(c, "SELECT count(*) FROM guard_items WHERE id >= $1", 1, NULL, two, NULL, NULL, 0);
		PQpipelineSync(c);
		const char *steps[] = { "insert", "delete", "insert2", "sync", "count", "sync2" };
		for (int i = 0; i < 6; i++) {
			PGresult *r = PQgetResult(c);
			if (!r) {
				i--;
				continue;
			}
			show(steps[i], r);
			ExecStatusType st = PQresultStatus(r);
			PQclear(r);
			if (st != PGRES_PIPELINE_SYNC) {
				/* each query's results end with a NULL */
				PGresult *n = PQgetResult(c);
				if (n) {
					show("extra", n);
					PQclear(n);
				}
			}
		}
		PQexitPipelineMode(c);
	} else if (!strcmp(sc, "prepared")) {
		PGresult *r = PQprepare(c, "del", "DELETE FROM guard_items WHERE id = $1", 1, NULL);
		show("prepare", r);
		PQclear(r);
		r = PQprepare(c, "sel", "SELECT count(*) FROM guard_items WHERE id > $1", 1, NULL);
		show("prepare2", r);
		PQclear(r);
		r = PQexecPrepared(c, "sel", 1, one, NULL, NULL, 0);
		show("exec2", r);
		PQclear(r);
	} else if (!strcmp(sc, "timeout") && argc > 3) {
		double t0 = now_ms();
		PGresult *r = PQexecParams(c, argv[3], 0, NULL, NULL, NULL, NULL, 0);
		double t1 = now_ms();
		show("stmt", r);
		PQclear(r);
		printf("elapsed %.0f\n", t1 - t0);
		exec(c, "lock_timeout", "SHOW lock_timeout");
	} else {
		fprintf(stderr, "unknown scenario %s\n", sc);
		return 2;
	}
	PQfinish(c);
	return 0;
}

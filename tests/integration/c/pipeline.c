/*
 * A libpq pipeline of N extended-protocol queries (default 1000), used by the integration tests.
 *
 *   pipeline CONNINFO [N]
 *
 * Two named prepared statements are used alongside unnamed ones; a Sync follows every 100
 * queries. Query N/2 has a syntax error (fails at Parse) and query 3N/4 divides by zero (fails at
 * Execute): the queries after each error, up to the next Sync, must come back as
 * PGRES_PIPELINE_ABORTED. Every result is printed as one line (the transcript the tests compare
 * with a direct connection to PostgreSQL) and checked against the value it must have; the
 * program exits 1 if any check fails, 2 if the connection fails.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { K_PREPARE, K_DESCRIBE, K_ADD, K_MUL, K_REPEAT, K_SYNTAX, K_DIVZERO, K_SYNC };

struct item {
	enum kind kind;
	int i;
};

static int failures;

static void check(int ok, int idx, const char *what)
{
	if (!ok) {
		printf("CHECK FAILED at item %d: %s\n", idx, what);
		failures++;
	}
}

static const char *val(PGresult *r, int col)
{
	return PQgetisnull(r, 0, col) ? "NULL" : PQgetvalue(r, 0, col);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s CONNINFO [N]\n", argv[0]);
		return 2;
	}
	int n = argc > 2 ? atoi(argv[2]) : 1000;
	int syntax_at = n / 2, divzero_at = 3 * n / 4;
	PGconn *conn = PQconnectdb(argv[1]);
	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "connect: %s", PQerrorMessage(conn));
		return 2;
	}
	if (!PQenterPipelineMode(conn)) {
		fprintf(stderr, "enter pipeline: %s", PQerrorMessage(conn));
		return 2;
	}

	struct item *items = calloc((size_t)n * 2 + 16, sizeof *items);
	int count = 0;
	char a[32], b[32], label[64];
	const char *params[2];

	PQsendPrepare(conn, "s_add", "SELECT $1::int4 + $2::int4 AS sum", 2, NULL);
	items[count++] = (struct item){K_PREPARE, -1};
	PQsendPrepare(conn, "s_repeat", "SELECT repeat($1::text, $2::int4) AS r, $2::int4 AS n", 2, NULL);
	items[count++] = (struct item){K_PREPARE, -2};
	PQsendDescribePrepared(conn, "s_add");
	items[count++] = (struct item){K_DESCRIBE, -1};

	for (int i = 0; i < n; i++) {
		enum kind k;
		if (i == syntax_at) {
			PQsendQueryParams(conn, "SELEC $1::int4", 0, NULL, NULL, NULL, NULL, 0);
			k = K_SYNTAX;
		} else if (i == divzero_at) {
			snprintf(a, sizeof a, "%d", i);
			params[0] = a;
			PQsendQueryParams(conn, "SELECT $1::int4 / 0", 1, NULL, params, NULL, NULL, 0);
			k = K_DIVZERO;
		} else if (i % 3 == 0) {
			snprintf(a, sizeof a, "%d", i);
			snprintf(b, sizeof b, "%d", 2 * i);
			params[0] = a;
			params[1] = b;
			PQsendQueryPrepared(conn, "s_add", 2, params, NULL, NULL, 0);
			k = K_ADD;
		} else if (i % 3 == 1) {
			snprintf(a, sizeof a, "%d", i);
			snprintf(label, sizeof label, "row %d", i);
			params[0] = a;
			params[1] = label;
			PQsendQueryParams(conn, "SELECT $1::int4 * 2 AS twice, $2::text AS label", 2, NULL,
							  params, NULL, NULL, 0);
			k = K_MUL;
		} else {
			snprintf(b, sizeof b, "%d", i % 10);
			params[0] = "ab";
			params[1] = b;
			PQsendQueryPrepared(conn, "s_repeat", 2, params, NULL, NULL, 0);
			k = K_REPEAT;
		}
		items[count++] = (struct item){k, i};
		if (i % 100 == 99 || i == n - 1) {
			PQpipelineSync(conn);
			items[count++] = (struct item){K_SYNC, i};
		}
	}
	if (PQflush(conn) != 0) {
		fprintf(stderr, "flush: %s", PQerrorMessage(conn));
		return 2;
	}

	int aborted = 0, syncs = 0, errors = 0;
	for (int idx = 0; idx < count; idx++) {
		struct item it = items[idx];
		PGresult *r = PQgetResult(conn);
		if (!r) {
			printf("item %d: unexpected NULL result: %s", idx, PQerrorMessage(conn));
			return 1;
		}
		ExecStatusType st = PQresultStatus(r);
		printf("%d %s", it.i, PQresStatus(st));
		if (st == PGRES_TUPLES_OK) {
			printf(" rows=%d", PQntuples(r));
			for (int c = 0; c < PQnfields(r) && PQntuples(r) > 0; c++)
				printf(" %s=%s", PQfname(r, c), val(r, c));
		} else if (st == PGRES_COMMAND_OK && it.kind == K_DESCRIBE) {
			printf(" nparams=%d nfields=%d", PQnparams(r), PQnfields(r));
		} else if (st == PGRES_FATAL_ERROR) {
			errors++;
			printf(" %s %s", PQresultErrorField(r, PG_DIAG_SQLSTATE),
				   PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY));
		} else if (st == PGRES_PIPELINE_SYNC) {
			syncs++;
			printf(" tx=%d", PQtransactionStatus(conn));
		} else if (st == PGRES_PIPELINE_ABORTED) {
			aborted++;
		}
		printf("\n");

		int in_aborted_window = (it.i > syntax_at && it.i <= (syntax_at / 100) * 100 + 99) ||
								(it.i > divzero_at && it.i <= (divzero_at / 100) * 100 + 99);
		char expect[64];
		switch (it.kind) {
		case K_PREPARE:
			check(st == PGRES_COMMAND_OK, idx, "prepare");
			break;
		case K_DESCRIBE:
			check(st == PGRES_COMMAND_OK && PQnparams(r) == 2 && PQnfields(r) == 1, idx, "describe");
			break;
		case K_SYNC:
			check(st == PGRES_PIPELINE_SYNC, idx, "sync");
			break;
		case K_SYNTAX:
			check(st == PGRES_FATAL_ERROR &&
				  strcmp(PQresultErrorField(r, PG_DIAG_SQLSTATE), "42601") == 0, idx, "syntax error");
			break;
		case K_DIVZERO:
			check(st == PGRES_FATAL_ERROR &&
				  strcmp(PQresultErrorField(r, PG_DIAG_SQLSTATE), "22012") == 0, idx, "division by zero");
			break;
		default:
			if (in_aborted_window) {
				check(st == PGRES_PIPELINE_ABORTED, idx, "aborted after error");
				break;
			}
			check(st == PGRES_TUPLES_OK && PQntuples(r) == 1, idx, "one row");
			if (st != PGRES_TUPLES_OK || PQntuples(r) != 1)
				break;
			if (it.kind == K_ADD) {
				snprintf(expect, sizeof expect, "%d", 3 * it.i);
				check(strcmp(val(r, 0), expect) == 0, idx, "s_add value");
			} else if (it.kind == K_MUL) {
				snprintf(expect, sizeof expect, "%d", 2 * it.i);
				check(strcmp(val(r, 0), expect) == 0, idx, "twice value");
				snprintf(expect, sizeof expect, "row %d", it.i);
				check(strcmp(val(r, 1), expect) == 0, idx, "label value");
			} else if (it.kind == K_REPEAT) {
				check((int)strlen(val(r, 0)) == 2 * (it.i % 10), idx, "repeat length");
			}
		}
		PQclear(r);
		if (it.kind != K_SYNC) {
			r = PQgetResult(conn);
			if (r) {
				printf("item %d: extra result %s\n", idx, PQresStatus(PQresultStatus(r)));
				failures++;
				PQclear(r);
			}
		}
	}
	check(PQexitPipelineMode(conn) == 1, count, "exit pipeline mode");
	PGresult *r = PQexec(conn, "SELECT 'after pipeline'");
	check(PQresultStatus(r) == PGRES_TUPLES_OK, count, "query after pipeline");
	PQclear(r);
	printf("summary: items=%d syncs=%d errors=%d aborted=%d failures=%d\n", count, syncs, errors,
		   aborted, failures);
	PQfinish(conn);
	free(items);
	return failures ? 1 : 0;
}

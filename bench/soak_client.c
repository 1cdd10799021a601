/*
 * soak_client — many concurrent libpq connections, each running a random mix of operations
 * whose every answer is checked. Driven by bench/soak.sh.
 *
 * N clients are spread over T threads; each thread drives its clients from one poll() loop
 * with libpq's non-blocking API, so 1,000 clients need two threads, not 1,000. A client
 * connects (plain or TLS, trust or SCRAM, to a route with or without TLS on the server
 * leg) and runs operations until the end: simple and extended queries with computed
 * answers, multi-statement queries, prepared statements, pipelines, COPY in both
 * directions with row counts and checksums, values of a few MB checked by md5 on both
 * sides, cancels of a pg_sleep, DDL in transactions, statements the default rule library
 * denies, and errors inside transactions. Now and then it drops its connection abruptly
 * (RST or FIN, in the middle of a query, a COPY or the login) or closes it politely, and
 * reconnects.
 *
 * What it does not do: judge ddlguard's memory or descriptors (soak.sh reads /proc), or
 * retry anything. An answer is ok, wrong (a value, row count, status or SQLSTATE that is
 * not the expected one) or an unexpected error (an error where none was due, a failed
 * login, a lost connection, a timeout). Two outcomes of the cancel protocol's own race
 * are counted apart: a cancel that arrived too late to stop its pg_sleep ("cancel_lost"),
 * and a 57014 in the statement right after a cancelled one ("stray_cancels": PostgreSQL
 * signals the backend twice, to its pid and to its process group, and on a busy machine
 * the second signal can land after the client already sent its next statement; measured
 * directly against PostgreSQL too).
 *
 * With --warm and --hold every client is logged in and idle for a while before the first
 * operation and after the last one, so that soak.sh can look at ddlguard with the same
 * sessions open and nothing in flight before and after the load. --ops changes the mix
 * (to find which kind of operation a growth comes with).
 *
 * Every second it replaces the stats file (KEY VALUE lines). At the end (or on SIGINT or
 * SIGTERM) it closes every connection with a Terminate, prints a summary and exits 0 only
 * when nothing was wrong and no error was unexpected.
 *
 *   cc -O2 -pthread -o soak_client soak_client.c $(pkg-config --cflags --libs libpq libssl libcrypto) -lm
 *   soak_client --clients 1000 --duration 600 --host 127.0.0.1 --port 6432 --user postgres \
 *               --db soak --tls-db soak_tls --tls-share 0.3 --stats stats.txt
 *
 * The database needs tables soak_c0 … soak_c<N-1> (batch_id bigint, k int, v text) and a
 * table soak_fixed (soak.sh creates them directly on PostgreSQL).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libpq-fe.h>
#include <math.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ options */

static int opt_clients = 100;
static int opt_threads = 2;
static double opt_duration = 60;
static const char *opt_host = "127.0.0.1";
static const char *opt_port = "6432";
static const char *opt_user = "postgres";
static const char *opt_db = "soak";
static const char *opt_tls_db;           /* route with TLS on the server leg, or NULL */
static double opt_tls_share = 0.3;       /* share of connections that use TLS to ddlguard */
static const char *opt_scram_user;       /* a password user, for TLS-both-legs logins */
static const char *opt_scram_password;
static const char *opt_stats;
static int opt_think_ms = 100;           /* pause between two operations, 0 … this */
static double opt_abort_pct = 3;         /* operations that get an abrupt disconnect armed */
static double opt_graceful_pct = 1;      /* operations after which the client reconnects */
static int opt_big_max_kb = 4096;        /* largest value of the big-value operations */
static double opt_ramp = 20;             /* seconds over which the first logins are spread */
static double opt_op_timeout = 180;      /* an operation that takes longer is an error */
static double opt_warm;                  /* seconds logged in and idle before the first operation */
static double opt_hold;                  /* seconds logged in and idle after the last one */
static unsigned long long opt_seed;
static const char *opt_ops;              /* "name=weight,…": change the mix */

/* ------------------------------------------------------------------ operations */

enum op {
	OP_SIMPLE,        /* SELECT of computed values, simple protocol */
	OP_MULTI,         /* three statements in one Query */
	OP_PARAMS,        /* extended protocol with parameters */
	OP_PREPARED,      /* a named prepared statement, prepared once per connection */
	OP_SERIES,        /* up to 5,000 rows, every row checked */
	OP_PIPELINE,      /* libpq pipeline, sometimes with a denied statement in the middle */
	OP_COPY_IN,       /* COPY FROM STDIN, then count/sum/md5 of what arrived, then DELETE */
	OP_COPY_OUT,      /* COPY (generate_series) TO STDOUT, every line checked */
	OP_BIG_UP,        /* a value of up to a few MB as a parameter: md5 on the server */
	OP_BIG_LITERAL,   /* the same as a literal in a simple Query (ddlguard parses it) */
	OP_BIG_DOWN,      /* repeat() of a few MB: checked byte for byte */
	OP_CANCEL,        /* pg_sleep(20), cancelled after 0.2–0.7 s: 57014 */
	OP_DDL_TX,        /* CREATE TABLE / INDEX / ALTER / DROP in one transaction */
	OP_ALTER,         /* ALTER of an existing table: ddlguard injects a lock_timeout */
	OP_DENY,          /* DROP TABLE: denied by the default library (42501) */
	OP_TX_ERR,        /* an error and a savepoint inside a transaction */
	OP__COUNT
};

static const char *const op_name[OP__COUNT] = {
	"simple", "multi", "params", "prepared", "series", "pipeline", "copy_in", "copy_out",
	"big_up", "big_literal", "big_down", "cancel", "ddl_tx", "alter", "deny", "tx_err",
};

/* Relative frequency of each operation (--ops changes them). */
static int op_weight[OP__COUNT] = {
	18, 6, 14, 8, 8, 6, 6, 6, 3, 1, 3, 4, 4, 3, 5, 5,
};

/* The operations whose connection may be dropped abruptly while they run. */
static const bool op_abortable[OP__COUNT] = {
	[OP_SERIES] = true, [OP_PIPELINE] = true, [OP_COPY_IN] = true, [OP_COPY_OUT] = true,
	[OP_BIG_UP] = true, [OP_BIG_LITERAL] = true, [OP_BIG_DOWN] = true, [OP_CANCEL] = true,
	[OP_DDL_TX] = true, [OP_ALTER] = true, [OP_TX_ERR] = true,
};

/* How the client reaches PostgreSQL: client leg > server leg. */
enum prof { PR_PLAIN, PR_PLAIN_STLS, PR_TLS, PR_TLS_STLS, PR_TLS_SCRAM, PR__COUNT };
static const char *const prof_name[PR__COUNT] = {
	"plain>plain", "plain>tls", "tls>plain", "tls>tls", "tls>tls-scram",
};

/* ------------------------------------------------------------------ counters */

static struct {
	atomic_ullong ok[OP__COUNT], wrong[OP__COUNT], err[OP__COUNT], aborted[OP__COUNT];
	atomic_ullong logins[PR__COUNT];
	atomic_ullong login_err, login_aborts, graceful, aborts_rst, aborts_fin, timeouts;
	atomic_ullong cancels_sent, cancel_send_err, cancel_ok, cancel_lost, stray_cancels;
	atomic_ullong copy_fail_ok, denied_ok, notices, rows_in, rows_out, bytes_up, bytes_down;
	atomic_llong connected;
} K;

#define INC(x) atomic_fetch_add_explicit(&(x), 1, memory_order_relaxed)
#define ADD(x, n) atomic_fetch_add_explicit(&(x), (n), memory_order_relaxed)
#define GET(x) atomic_load_explicit(&(x), memory_order_relaxed)

/* Unexpected errors by kind ("op: SQLSTATE message"), and the first anomalies in full. */
#define ERR_KINDS 64
static pthread_mutex_t err_mu = PTHREAD_MUTEX_INITIALIZER;
static struct { char key[160]; unsigned long long n; } err_kind[ERR_KINDS];
static int err_nkinds;
static unsigned long long err_other;
static int anomalies_printed;
#define ANOMALIES_MAX 200

/*
 * Phases: warm (t_start … t_load: log in, stay idle), load (… t_end: operations), hold
 * (… t_close: finish what runs, then stay logged in and idle), closing. The idle phases let
 * soak.sh compare ddlguard with the same sessions open before and after the load.
 */
static double t_start;
static double t_load;
static double t_end;
static double t_close;
static atomic_int g_stop;
static atomic_int g_workers_done;
static int g_devnull = -1;

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void count_error_kind(const char *key)
{
	pthread_mutex_lock(&err_mu);
	int i;
	for (i = 0; i < err_nkinds; i++)
		if (strcmp(err_kind[i].key, key) == 0)
			break;
	if (i < err_nkinds)
		err_kind[i].n++;
	else if (err_nkinds < ERR_KINDS) {
		snprintf(err_kind[err_nkinds].key, sizeof(err_kind[0].key), "%s", key);
		err_kind[err_nkinds++].n = 1;
	} else
		err_other++;
	pthread_mutex_unlock(&err_mu);
}

static void anomaly(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void anomaly(const char *fmt, ...)
{
	pthread_mutex_lock(&err_mu);
	if (anomalies_printed++ < ANOMALIES_MAX) {
		va_list ap;
		va_start(ap, fmt);
		fprintf(stderr, "[%7.1fs] ", mono() - t_start);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		va_end(ap);
	}
	pthread_mutex_unlock(&err_mu);
}

/* ------------------------------------------------------------------ md5, random */

static void md5_hex(const void *p, size_t n, char out[33])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned dl = 0;
	EVP_Digest(p, n, d, &dl, EVP_md5(), NULL);
	for (unsigned i = 0; i < 16; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
	out[32] = 0;
}

static void md5_final_hex(EVP_MD_CTX *ctx, char out[33])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned dl = 0;
	EVP_DigestFinal_ex(ctx, d, &dl);
	for (unsigned i = 0; i < 16; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
	out[32] = 0;
}

/* md5 of the decimal text of 1 … MD5_TABLE_MAX, the rows series and copy_out check. */
#define MD5_TABLE_MAX 50000
static char (*md5_of_int)[33];

static void md5_table_init(void)
{
	md5_of_int = calloc(MD5_TABLE_MAX + 1, sizeof(*md5_of_int));
	if (!md5_of_int)
		abort();
	for (int i = 1; i <= MD5_TABLE_MAX; i++) {
		char num[16];
		snprintf(num, sizeof(num), "%d", i);
		md5_hex(num, strlen(num), md5_of_int[i]);
	}
}

static uint64_t xs_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/* ------------------------------------------------------------------ clients */

enum cstate {
	CS_WAIT,        /* not connected; connect at wake_at */
	CS_CONNECTING,  /* PQconnectPoll in progress */
	CS_IDLE,        /* logged in, between operations; next one at wake_at */
	CS_OP,          /* an operation runs */
	CS_DONE,        /* finished for good */
};

/* One step of a scripted operation: a statement and its expected outcome. */
struct sstep {
	char kind;          /* 'T' a row whose first cell is v0 (if set), 'C' a command whose tag
			       starts with v0, 'E' an error with SQLSTATE v0 */
	bool extended;      /* send with PQsendQueryParams (no parameters) */
	char v0[80];
	char sql[256];
};

#define SCRIPT_MAX 10
#define PIPE_MAX 8

enum bad { BAD_NONE, BAD_ERROR, BAD_WRONG };

struct client {
	int slot;
	PGconn *conn;
	enum cstate st;
	enum prof prof;
	int lport;                        /* local TCP port: finds the session in ddlguard's log */
	bool counted;                     /* in K.connected */
	PostgresPollingStatusType poll_want;
	double wake_at, deadline;
	double cancel_at, abort_at;       /* 0: not armed */
	bool abort_rst;
	bool want_write;
	bool prepared;                    /* soak_p exists on this connection */
	uint64_t rng;
	unsigned seq;                     /* per-client counter, for unique names */

	/* the operation in flight */
	enum op op;
	int step, nsteps, nres;
	bool step_done;                   /* step_result decided the step is over */
	enum bad bad;
	char why[400];
	double op_started;
	long long a, b;
	int n;
	long long batch;
	char s[72];
	char sx[16];                      /* a second small value (cancel variants, …) */
	int variant;
	struct sstep sc[SCRIPT_MAX];
	char *big;                        /* big value or query text (owned, freed at op end) */
	size_t biglen;
	char bigmd5[33];
	/* COPY */
	bool copy_in, copy_out, copy_end_sent, copy_fail;
	int rows_done, abort_after_rows;
	uint64_t copy_rng;
	EVP_MD_CTX *md;
	bool md_any;
	long long sum;
	char *pend;                       /* a COPY chunk libpq has not taken yet */
	size_t pend_len, pend_cap;
	/* pipeline */
	int pl_n, pl_deny, pl_idx;
	bool pl_synced, pl_got;
	long long pl_val[PIPE_MAX];
	/* cancel */
	bool cancel_sent;
	double last_cancel_end;           /* when the last cancel operation on this connection ended */
	bool stray;                       /* this operation got a 57014 meant for the one before */
};

struct worker {
	pthread_t th;
	struct client *c;
	int n;
	atomic_int n_op;                  /* its clients in an operation (last loop) */
};

static struct worker *g_workers;
static int g_nworkers;

static uint64_t rnd(struct client *c) { return xs_next(&c->rng); }
static uint64_t rnd_below(struct client *c, uint64_t n) { return n ? rnd(c) % n : 0; }
static double rnd01(struct client *c) { return (double)(rnd(c) >> 11) / 9007199254740992.0; }
static bool chance(struct client *c, double pct) { return rnd01(c) * 100.0 < pct; }

static void rnd_alnum(struct client *c, char *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = alnum[rnd_below(c, sizeof(alnum) - 1)];
	out[n] = 0;
}

static void notice_cb(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
	INC(K.notices);
}

/* ------------------------------------------------------------------ cancel threads */

/* PQcancel blocks (connect, send, wait for the close), so cancels go to a few threads. */
struct cancel_job {
	PGcancel *pc;
	double queued;
	struct cancel_job *next;
};
/* How long cancels waited for a thread, and how long PQcancel took (ms, for the stats). */
static atomic_ullong cancel_wait_ms_max, cancel_call_ms_max, cancel_call_ms_sum;

static void atomic_max(atomic_ullong *a, unsigned long long v)
{
	unsigned long long cur = atomic_load(a);
	while (v > cur && !atomic_compare_exchange_weak(a, &cur, v))
		;
}
static pthread_mutex_t cq_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cq_cv = PTHREAD_COND_INITIALIZER;
static struct cancel_job *cq_head, *cq_tail;
static bool cq_stop;
#define CANCEL_THREADS 32

static void cancel_enqueue(PGcancel *pc)
{
	struct cancel_job *j = malloc(sizeof(*j));
	if (!j) {
		PQfreeCancel(pc);
		return;
	}
	j->pc = pc;
	j->queued = mono();
	j->next = NULL;
	pthread_mutex_lock(&cq_mu);
	if (cq_tail)
		cq_tail->next = j;
	else
		cq_head = j;
	cq_tail = j;
	pthread_cond_signal(&cq_cv);
	pthread_mutex_unlock(&cq_mu);
}

static void *cancel_main(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_mutex_lock(&cq_mu);
		while (!cq_head && !cq_stop)
			pthread_cond_wait(&cq_cv, &cq_mu);
		struct cancel_job *j = cq_head;
		if (j) {
			cq_head = j->next;
			if (!cq_head)
				cq_tail = NULL;
		}
		pthread_mutex_unlock(&cq_mu);
		if (!j)
			return NULL;
		char err[256];
		double t0 = mono();
		int sent = PQcancel(j->pc, err, sizeof(err));
		double t1 = mono();
		atomic_max(&cancel_wait_ms_max, (unsigned long long)((t0 - j->queued) * 1000));
		atomic_max(&cancel_call_ms_max, (unsigned long long)((t1 - t0) * 1000));
		atomic_fetch_add(&cancel_call_ms_sum, (unsigned long long)((t1 - t0) * 1000));
		if (!sent) {
			INC(K.cancel_send_err);
			char key[160];
			err[strcspn(err, "\n")] = 0;
			snprintf(key, sizeof(key), "cancel: PQcancel failed: %.100s", err);
			count_error_kind(key);
		}
		PQfreeCancel(j->pc);
		free(j);
	}
}

/* ------------------------------------------------------------------ connections */

static void set_wait(struct client *c, double delay)
{
	c->st = CS_WAIT;
	c->wake_at = mono() + delay;
}

static void uncount(struct client *c)
{
	if (c->counted) {
		atomic_fetch_sub(&K.connected, 1);
		c->counted = false;
	}
}

static void op_cleanup(struct client *c)
{
	free(c->big);
	c->big = NULL;
	c->biglen = 0;
	c->copy_in = c->copy_out = false;
	c->pend_len = 0;
	c->cancel_at = c->abort_at = 0;
	c->abort_after_rows = -1;
	c->want_write = false;
}

static void close_graceful(struct client *c)
{
	op_cleanup(c);
	if (c->conn)
		PQfinish(c->conn);    /* sends Terminate */
	c->conn = NULL;
	uncount(c);
}

/*
 * Drop the connection without a Terminate. dup2() puts /dev/null in the socket's place in
 * one step (closing the socket: with SO_LINGER 0 that is a RST, otherwise a FIN), so the
 * PQfinish that follows writes its Terminate (and TLS close_notify) into /dev/null and
 * closes a descriptor that is still ours; no other thread can be handed the number between.
 */
static void close_abrupt(struct client *c, bool rst)
{
	op_cleanup(c);
	if (c->conn) {
		int fd = PQsocket(c->conn);
		if (fd >= 0) {
			if (rst) {
				struct linger l = { 1, 0 };
				setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
			}
			dup2(g_devnull, fd);
		}
		PQfinish(c->conn);
	}
	c->conn = NULL;
	uncount(c);
}

/* A planned abrupt disconnect, counted. */
static void drop_connection(struct client *c, bool rst)
{
	if (rst)
		INC(K.aborts_rst);
	else
		INC(K.aborts_fin);
	close_abrupt(c, rst);
}

static void start_connect(struct client *c)
{
	const char *kw[12], *val[12];
	int i = 0;
	double r = rnd01(c);
	if (r < opt_tls_share) {
		double t = rnd01(c);
		if (!opt_tls_db || t < 0.4)
			c->prof = PR_TLS;
		else if (!opt_scram_user || t < 0.7)
			c->prof = PR_TLS_STLS;
		else
			c->prof = PR_TLS_SCRAM;
	} else
		c->prof = (opt_tls_db && rnd01(c) < 0.2) ? PR_PLAIN_STLS : PR_PLAIN;
	bool tls = c->prof >= PR_TLS;
	bool stls = c->prof == PR_PLAIN_STLS || c->prof == PR_TLS_STLS || c->prof == PR_TLS_SCRAM;
	char app[32];
	snprintf(app, sizeof(app), "soak-%d", c->slot);
	kw[i] = "host"; val[i++] = opt_host;
	kw[i] = "port"; val[i++] = opt_port;
	kw[i] = "dbname"; val[i++] = stls ? opt_tls_db : opt_db;
	kw[i] = "user"; val[i++] = c->prof == PR_TLS_SCRAM ? opt_scram_user : opt_user;
	if (c->prof == PR_TLS_SCRAM) {
		kw[i] = "password"; val[i++] = opt_scram_password;
	}
	kw[i] = "sslmode"; val[i++] = tls ? "require" : "disable";
	kw[i] = "gssencmode"; val[i++] = "disable";
	kw[i] = "application_name"; val[i++] = app;
	kw[i] = "connect_timeout"; val[i++] = "60";
	kw[i] = NULL; val[i] = NULL;
	c->conn = PQconnectStartParams(kw, val, 0);
	c->abort_at = 0;
	if (!c->conn || PQstatus(c->conn) == CONNECTION_BAD) {
		INC(K.login_err);
		count_error_kind(c->conn ? "login: PQconnectStart failed" : "login: out of memory");
		anomaly("slot %d %s: PQconnectStart failed: %s", c->slot, prof_name[c->prof],
			c->conn ? PQerrorMessage(c->conn) : "out of memory");
		if (c->conn)
			PQfinish(c->conn);
		c->conn = NULL;
		set_wait(c, 1);
		return;
	}
	c->st = CS_CONNECTING;
	c->poll_want = PGRES_POLLING_WRITING;
	c->deadline = mono() + 90;
	/* Some logins are dropped half-way: after the TCP connect, the TLS hello, the startup. */
	double now = mono();
	if (now >= t_load && now < t_end && chance(c, opt_abort_pct / 3))
		c->abort_at = mono() + rnd01(c) * 0.05;
}

static void login_failed(struct client *c, const char *what)
{
	char msg[300], key[160];
	snprintf(msg, sizeof(msg), "%s", c->conn ? PQerrorMessage(c->conn) : "");
	msg[strcspn(msg, "\n")] = 0;
	INC(K.login_err);
	snprintf(key, sizeof(key), "login %s: %s: %.90s", prof_name[c->prof], what, msg);
	count_error_kind(key);
	anomaly("slot %d %s: login %s: %s", c->slot, prof_name[c->prof], what, msg);
	close_graceful(c);
	set_wait(c, 0.5 + rnd01(c));
}

static void connect_poll(struct client *c)
{
	PostgresPollingStatusType r = PQconnectPoll(c->conn);
	if (r == PGRES_POLLING_OK) {
		if (PQsetnonblocking(c->conn, 1) != 0) {
			login_failed(c, "PQsetnonblocking");
			return;
		}
		PQsetNoticeProcessor(c->conn, notice_cb, c);
		struct sockaddr_in sa;
		socklen_t sl = sizeof(sa);
		c->lport = getsockname(PQsocket(c->conn), (struct sockaddr *)&sa, &sl) == 0 ? ntohs(sa.sin_port) : 0;
		INC(K.logins[c->prof]);
		atomic_fetch_add(&K.connected, 1);
		c->counted = true;
		c->prepared = false;
		c->last_cancel_end = 0;
		c->abort_at = 0;
		c->st = CS_IDLE;
		c->wake_at = mono() + rnd01(c) * opt_think_ms / 1000.0;
		if (c->wake_at < t_load)
			c->wake_at = t_load + rnd01(c) * opt_think_ms / 1000.0;
	} else if (r == PGRES_POLLING_FAILED)
		login_failed(c, "failed");
	else
		c->poll_want = r;
}

/* ------------------------------------------------------------------ checking answers */

static void op_note(struct client *c, enum bad b, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void op_note(struct client *c, enum bad b, const char *fmt, ...)
{
	if (b <= c->bad && c->why[0])
		return;   /* keep the first, most serious explanation */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->why, sizeof(c->why), fmt, ap);
	va_end(ap);
	if (b > c->bad)
		c->bad = b;
}

static const char *sqlstate_of(const PGresult *r)
{
	const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	return s ? s : "-----";
}

static void one_line(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "");
	for (char *p = dst; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

/* An error result where none was expected. */
static void unexpected(struct client *c, const PGresult *r)
{
	char msg[200];
	one_line(msg, sizeof(msg), PQresultErrorMessage(r));
	op_note(c, BAD_ERROR, "step %d: unexpected %s %s: %s", c->step, PQresStatus(PQresultStatus(r)),
		sqlstate_of(r), msg);
}

static bool want_rows(struct client *c, const PGresult *r, int nrows, int ncols)
{
	ExecStatusType st = PQresultStatus(r);
	if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR || st == PGRES_PIPELINE_ABORTED) {
		unexpected(c, r);
		return false;
	}
	if (st != PGRES_TUPLES_OK) {
		op_note(c, BAD_WRONG, "step %d: status %s, expected rows", c->step, PQresStatus(st));
		return false;
	}
	if ((nrows >= 0 && PQntuples(r) != nrows) || PQnfields(r) != ncols) {
		op_note(c, BAD_WRONG, "step %d: %d rows x %d columns, expected %d x %d", c->step,
			PQntuples(r), PQnfields(r), nrows, ncols);
		return false;
	}
	return true;
}

static bool want_cell(struct client *c, const PGresult *r, int row, int col, const char *expect)
{
	if (PQgetisnull(r, row, col)) {
		op_note(c, BAD_WRONG, "step %d: row %d column %d is NULL, expected '%.60s'", c->step, row, col, expect);
		return false;
	}
	const char *v = PQgetvalue(r, row, col);
	if (strcmp(v, expect) != 0) {
		op_note(c, BAD_WRONG, "step %d: row %d column %d is '%.60s', expected '%.60s'", c->step, row, col, v, expect);
		return false;
	}
	return true;
}

static bool want_cell_ll(struct client *c, const PGresult *r, int row, int col, long long expect)
{
	char e[32];
	snprintf(e, sizeof(e), "%lld", expect);
	return want_cell(c, r, row, col, e);
}

static bool want_command(struct client *c, const PGresult *r, const char *tag_prefix)
{
	ExecStatusType st = PQresultStatus(r);
	if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR || st == PGRES_PIPELINE_ABORTED) {
		unexpected(c, r);
		return false;
	}
	if (st != PGRES_COMMAND_OK) {
		op_note(c, BAD_WRONG, "step %d: status %s, expected a command", c->step, PQresStatus(st));
		return false;
	}
	if (tag_prefix && strncmp(PQcmdStatus((PGresult *)r), tag_prefix, strlen(tag_prefix)) != 0) {
		op_note(c, BAD_WRONG, "step %d: command tag '%s', expected '%s…'", c->step,
			PQcmdStatus((PGresult *)r), tag_prefix);
		return false;
	}
	return true;
}

static bool want_error(struct client *c, const PGresult *r, const char *sqlstate)
{
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_FATAL_ERROR) {
		op_note(c, BAD_WRONG, "step %d: status %s, expected error %s", c->step, PQresStatus(st), sqlstate);
		return false;
	}
	const char *got = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	if (!got) {   /* libpq's own error: the connection broke */
		unexpected(c, r);
		return false;
	}
	if (strcmp(got, sqlstate) != 0) {
		char msg[200];
		one_line(msg, sizeof(msg), PQresultErrorMessage(r));
		op_note(c, BAD_WRONG, "step %d: error %s (%s), expected %s", c->step, got, msg, sqlstate);
		return false;
	}
	if (strcmp(sqlstate, "42501") == 0) {
		/* ddlguard's denial names itself; a server-side permission error would not. */
		const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
		if (!m || !strstr(m, "ddlguard")) {
			op_note(c, BAD_WRONG, "step %d: 42501 without ddlguard's rule: %.120s", c->step, m ? m : "");
			return false;
		}
		INC(K.denied_ok);
	}
	return true;
}

/* ------------------------------------------------------------------ operation set-up */

static void sc_add(struct client *c, char kind, const char *v0, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void sc_add(struct client *c, char kind, const char *v0, const char *fmt, ...)
{
	struct sstep *s = &c->sc[c->nsteps++];
	s->kind = kind;
	s->extended = false;
	snprintf(s->v0, sizeof(s->v0), "%s", v0 ? v0 : "");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->sql, sizeof(s->sql), fmt, ap);
	va_end(ap);
}

static bool scripted(enum op op)
{
	return op == OP_DDL_TX || op == OP_ALTER || op == OP_DENY || op == OP_TX_ERR;
}

static size_t big_size(struct client *c, size_t max)
{
	size_t lo = 64 * 1024;
	if (max <= lo)
		return max;
	return lo + rnd_below(c, max - lo);
}

/* One COPY row into buf (text format); updates the expected count/sum/md5. */
static size_t copy_row(struct client *c, char *buf, int k)
{
	size_t n = (size_t)sprintf(buf, "%lld\t%d\t", c->batch, k);
	c->sum += k;
	uint64_t r = xs_next(&c->copy_rng);
	if (r % 50 == 0) {   /* NULL: string_agg skips it */
		memcpy(buf + n, "\\N\n", 3);
		return n + 3;
	}
	char v[160];
	size_t vl = (r >> 8) % 120;
	for (size_t i = 0; i < vl; i++) {
		uint64_t x = xs_next(&c->copy_rng);
		switch (x % 40) {
		case 0: v[i] = '\\'; break;   /* escaped in the stream */
		case 1: v[i] = '\t'; break;
		case 2: v[i] = ' '; break;
		default: v[i] = alnum[(x >> 8) % (sizeof(alnum) - 1)];
		}
	}
	if (c->md_any)
		EVP_DigestUpdate(c->md, ",", 1);
	EVP_DigestUpdate(c->md, v, vl);
	c->md_any = true;
	for (size_t i = 0; i < vl; i++) {
		if (v[i] == '\\') {
			buf[n++] = '\\';
			buf[n++] = '\\';
		} else if (v[i] == '\t') {
			buf[n++] = '\\';
			buf[n++] = 't';
		} else
			buf[n++] = v[i];
	}
	buf[n++] = '\n';
	return n;
}

static int op_weight_total;

static enum op pick_op(struct client *c)
{
	int total = op_weight_total;
	int r = (int)rnd_below(c, (uint64_t)total);
	for (int i = 0; i < OP__COUNT; i++) {
		if (r < op_weight[i])
			return (enum op)i;
		r -= op_weight[i];
	}
	return OP_SIMPLE;
}

static void op_setup(struct client *c)
{
	c->nsteps = 1;
	c->a = (long long)rnd_below(c, 4000000000ULL) - 2000000000LL;
	c->b = (long long)rnd_below(c, 4000000000ULL) - 2000000000LL;
	rnd_alnum(c, c->s, 1 + rnd_below(c, 60));
	c->variant = (int)rnd_below(c, 1000);
	c->seq++;
	switch (c->op) {
	case OP_PREPARED:
		c->nsteps = 2;
		c->step = c->prepared ? 1 : 0;
		break;
	case OP_SERIES:
		c->n = 1 + (int)rnd_below(c, 5000);
		break;
	case OP_PIPELINE:
		c->pl_n = 2 + (int)rnd_below(c, PIPE_MAX - 1);
		c->pl_deny = chance(c, 30) ? (int)rnd_below(c, (uint64_t)c->pl_n) : -1;
		for (int i = 0; i < c->pl_n; i++)
			c->pl_val[i] = (long long)rnd_below(c, 1000000000ULL);
		c->pl_idx = 0;
		c->pl_synced = c->pl_got = false;
		break;
	case OP_COPY_IN:
		c->nsteps = 3;
		c->n = 1 + (int)rnd_below(c, 20000);
		c->batch = (long long)(rnd(c) >> 2);
		c->copy_rng = rnd(c) | 1;
		c->copy_fail = chance(c, 5);
		break;
	case OP_COPY_OUT:
		c->n = 1 + (int)rnd_below(c, 50000);
		break;
	case OP_BIG_UP: {
		c->biglen = big_size(c, (size_t)opt_big_max_kb * 1024);
		c->big = malloc(c->biglen + 1);
		if (!c->big)
			abort();
		for (size_t i = 0; i < c->biglen; i += 8) {
			uint64_t x = rnd(c);
			for (size_t j = i; j < i + 8 && j < c->biglen; j++, x >>= 8)
				c->big[j] = (char)(0x20 + (x & 0xff) % 95);
		}
		c->big[c->biglen] = 0;
		md5_hex(c->big, c->biglen, c->bigmd5);
		break;
	}
	case OP_BIG_LITERAL: {
		size_t max = (size_t)opt_big_max_kb * 1024 / 2;
		size_t len = big_size(c, max);
		static const char pre[] = "SELECT md5(v), length(v) FROM (VALUES ('";
		static const char post[] = "')) AS t(v)";
		c->big = malloc(sizeof(pre) + len + sizeof(post));
		if (!c->big)
			abort();
		memcpy(c->big, pre, sizeof(pre) - 1);
		char *v = c->big + sizeof(pre) - 1;
		for (size_t i = 0; i < len; i++)
			v[i] = alnum[rnd_below(c, sizeof(alnum) - 1)];
		md5_hex(v, len, c->bigmd5);
		memcpy(v + len, post, sizeof(post));
		c->biglen = len;
		break;
	}
	case OP_BIG_DOWN:
		rnd_alnum(c, c->s, 61);
		c->n = (int)(big_size(c, (size_t)opt_big_max_kb * 1024) / 61);
		break;
	case OP_CANCEL:
		c->cancel_sent = false;
		break;
	case OP_DDL_TX: {
		char t[48];
		snprintf(t, sizeof(t), "soak_d%d_%u", c->slot, c->seq);
		c->nsteps = 0;
		sc_add(c, 'C', "BEGIN", "BEGIN");
		sc_add(c, 'C', "CREATE TABLE", "CREATE TABLE %s (id bigint, v text)", t);
		sc_add(c, 'C', "CREATE INDEX", "CREATE INDEX %s_v ON %s (v)", t, t);
		sc_add(c, 'C', "ALTER TABLE", "ALTER TABLE %s ADD COLUMN w text", t);
		sc_add(c, 'C', "INSERT 0 3", "INSERT INTO %s VALUES (1, 'a', 'x'), (2, 'b', 'y'), (3, 'c', '%s')", t, c->s);
		char e[100];
		snprintf(e, sizeof(e), "ax,by,c%s", c->s);
		sc_add(c, 'T', e, "SELECT string_agg(v || w, ',' ORDER BY id) FROM %s", t);
		sc_add(c, 'C', "DROP TABLE", "DROP TABLE %s", t);
		if (c->variant % 2)
			sc_add(c, 'C', "COMMIT", "COMMIT");
		else
			sc_add(c, 'C', "ROLLBACK", "ROLLBACK");
		sc_add(c, 'T', "0", "SELECT count(*) FROM pg_class WHERE relname = '%s'", t);
		break;
	}
	case OP_ALTER: {
		c->nsteps = 0;
		if (c->variant % 2) {
			/* A looser client lock_timeout: ddlguard tightens it for the ALTER, then
			 * restores the client's own value. */
			char lt[16];
			snprintf(lt, sizeof(lt), "%ds", 3 + c->variant % 7);
			sc_add(c, 'C', "SET", "SET lock_timeout = '%s'", lt);
			sc_add(c, 'C', "ALTER TABLE", "ALTER TABLE soak_c%d ALTER COLUMN v SET STATISTICS %d",
			       c->slot, 100 + c->variant);
			sc_add(c, 'T', lt, "SHOW lock_timeout");
			sc_add(c, 'C', "RESET", "RESET lock_timeout");
			sc_add(c, 'T', "0", "SHOW lock_timeout");
		} else {
			sc_add(c, 'C', "BEGIN", "BEGIN");
			sc_add(c, 'C', "ALTER TABLE", "ALTER TABLE soak_c%d ADD COLUMN tmp_%u text", c->slot, c->seq);
			sc_add(c, 'T', "0", "SHOW lock_timeout");
			sc_add(c, 'C', "INSERT 0 1", "INSERT INTO soak_c%d (batch_id, k, v, tmp_%u) VALUES (-1, 1, 'x', '%s')",
			       c->slot, c->seq, c->s);
			sc_add(c, 'T', c->s, "SELECT tmp_%u FROM soak_c%d WHERE batch_id = -1", c->seq, c->slot);
			sc_add(c, 'C', "ROLLBACK", "ROLLBACK");
			sc_add(c, 'T', "0", "SELECT count(*) FROM pg_attribute WHERE attrelid = 'soak_c%d'::regclass "
			       "AND attname = 'tmp_%u'", c->slot, c->seq);
		}
		break;
	}
	case OP_DENY:
		c->nsteps = 0;
		switch (c->variant % 3) {
		case 0:
			sc_add(c, 'E', "42501", "DROP TABLE soak_fixed");
			break;
		case 1:
			sc_add(c, 'E', "42501", "DROP TABLE soak_fixed");
			c->sc[0].extended = true;
			break;
		default:
			sc_add(c, 'C', "BEGIN", "BEGIN");
			sc_add(c, 'T', c->s, "SELECT '%s'::text", c->s);
			sc_add(c, 'E', "42501", "DROP TABLE soak_fixed");
			sc_add(c, 'E', "25P02", "SELECT 1");
			sc_add(c, 'C', "ROLLBACK", "ROLLBACK");
		}
		sc_add(c, 'T', "1", "SELECT count(*) FROM pg_class WHERE relname = 'soak_fixed'");
		break;
	case OP_TX_ERR: {
		long long b = -(long long)(rnd(c) >> 4) - 2;
		c->nsteps = 0;
		sc_add(c, 'C', "BEGIN", "BEGIN");
		sc_add(c, 'C', "INSERT 0 1", "INSERT INTO soak_c%d (batch_id, k, v) VALUES (%lld, 1, '%s')", c->slot, b, c->s);
		sc_add(c, 'C', "SAVEPOINT", "SAVEPOINT s1");
		sc_add(c, 'E', "22012", "SELECT 1 / (%lld - %lld)", b, b);
		sc_add(c, 'E', "25P02", "SELECT '%s'::text", c->s);
		sc_add(c, 'C', "ROLLBACK", "ROLLBACK TO SAVEPOINT s1");
		sc_add(c, 'T', c->s, "SELECT v FROM soak_c%d WHERE batch_id = %lld", c->slot, b);
		sc_add(c, 'C', "ROLLBACK", "ROLLBACK");
		sc_add(c, 'T', "0", "SELECT count(*) FROM soak_c%d WHERE batch_id = %lld", c->slot, b);
		for (int i = 0; i < c->nsteps; i++)
			c->sc[i].extended = (c->variant >> i) & 1;
		break;
	}
	default:
		break;
	}
}

/* ------------------------------------------------------------------ sending */

static bool flush_out(struct client *c)
{
	int r = PQflush(c->conn);
	if (r < 0)
		return false;
	c->want_write = r == 1;
	return true;
}

static bool step_send(struct client *c)
{
	PGconn *k = c->conn;
	char p1[32], p2[32];
	const char *pv[3];
	int ok = 0;
	c->nres = 0;
	c->step_done = false;
	if (scripted(c->op)) {
		struct sstep *s = &c->sc[c->step];
		ok = s->extended ? PQsendQueryParams(k, s->sql, 0, NULL, NULL, NULL, NULL, 0)
				 : PQsendQuery(k, s->sql);
		return ok && flush_out(c);
	}
	switch (c->op) {
	case OP_SIMPLE: {
		char q[256];
		snprintf(q, sizeof(q), "SELECT %lld::int8 * %lld, md5('%s'), '%s'::text || '!'", c->a, c->b, c->s, c->s);
		ok = PQsendQuery(k, q);
		break;
	}
	case OP_MULTI: {
		char q[256];
		snprintf(q, sizeof(q), "SELECT %lld + 1; SELECT '%s'::text AS t; VALUES (%lld), (%lld)", c->a, c->s, c->a, c->b);
		ok = PQsendQuery(k, q);
		break;
	}
	case OP_PARAMS:
		snprintf(p1, sizeof(p1), "%lld", c->a);
		snprintf(p2, sizeof(p2), "%lld", c->b);
		pv[0] = p1; pv[1] = p2; pv[2] = c->s;
		ok = PQsendQueryParams(k, "SELECT $1::int8 + $2::int8, upper($3::text), length($3::text)",
				       3, NULL, pv, NULL, NULL, 0);
		break;
	case OP_PREPARED:
		if (c->step == 0)
			ok = PQsendPrepare(k, "soak_p", "SELECT $1::int8 * 2, md5($2::text)", 2, NULL);
		else {
			snprintf(p1, sizeof(p1), "%lld", c->a);
			pv[0] = p1; pv[1] = c->s;
			ok = PQsendQueryPrepared(k, "soak_p", 2, pv, NULL, NULL, 0);
		}
		break;
	case OP_SERIES:
		if (c->variant % 2) {
			char q[128];
			snprintf(q, sizeof(q), "SELECT i, md5(i::text) FROM generate_series(1, %d) AS i", c->n);
			ok = PQsendQuery(k, q);
		} else {
			snprintf(p1, sizeof(p1), "%d", c->n);
			pv[0] = p1;
			ok = PQsendQueryParams(k, "SELECT i, md5(i::text) FROM generate_series(1, $1::int) AS i",
					       1, NULL, pv, NULL, NULL, 0);
		}
		break;
	case OP_PIPELINE:
		ok = PQenterPipelineMode(k);
		for (int i = 0; ok && i < c->pl_n; i++) {
			if (i == c->pl_deny)
				ok = PQsendQueryParams(k, "DROP TABLE soak_fixed", 0, NULL, NULL, NULL, NULL, 0);
			else {
				snprintf(p1, sizeof(p1), "%lld", c->pl_val[i]);
				pv[0] = p1;
				ok = PQsendQueryParams(k, "SELECT $1::int8 * 3", 1, NULL, pv, NULL, NULL, 0);
			}
		}
		ok = ok && PQpipelineSync(k);
		break;
	case OP_COPY_IN:
		if (c->step == 0) {
			char q[128];
			snprintf(q, sizeof(q), "COPY soak_c%d (batch_id, k, v) FROM STDIN", c->slot);
			c->copy_end_sent = false;
			c->rows_done = 0;
			c->sum = 0;
			c->md_any = false;
			EVP_DigestInit_ex(c->md, EVP_md5(), NULL);
			if (c->abort_at && op_abortable[c->op]) {
				/* Drop the connection half-way through the COPY data, not on a timer. */
				c->abort_at = 0;
				c->abort_after_rows = (int)rnd_below(c, (uint64_t)c->n);
			}
			ok = PQsendQuery(k, q);
		} else if (c->step == 1) {
			char q[256];
			snprintf(q, sizeof(q), "SELECT count(*), coalesce(sum(k), 0), md5(coalesce(string_agg(v, ',' ORDER BY k), '')) "
				 "FROM soak_c%d WHERE batch_id = %lld", c->slot, c->batch);
			ok = PQsendQuery(k, q);
		} else {
			char q[128];
			snprintf(q, sizeof(q), "DELETE FROM soak_c%d WHERE batch_id = %lld", c->slot, c->batch);
			ok = PQsendQuery(k, q);
		}
		break;
	case OP_COPY_OUT: {
		char q[128];
		snprintf(q, sizeof(q), "COPY (SELECT i, md5(i::text) FROM generate_series(1, %d) AS i) TO STDOUT", c->n);
		c->rows_done = 0;
		if (c->abort_at) {
			c->abort_at = 0;
			c->abort_after_rows = (int)rnd_below(c, (uint64_t)c->n);
		}
		ok = PQsendQuery(k, q);
		break;
	}
	case OP_BIG_UP:
		pv[0] = c->big;
		ok = PQsendQueryParams(k, "SELECT md5($1::text), length($1::text)", 1, NULL, pv, NULL, NULL, 0);
		ADD(K.bytes_up, c->biglen);
		break;
	case OP_BIG_LITERAL:
		ok = PQsendQuery(k, c->big);
		ADD(K.bytes_up, c->biglen);
		break;
	case OP_BIG_DOWN:
		snprintf(p1, sizeof(p1), "%d", c->n);
		pv[0] = c->s; pv[1] = p1;
		ok = PQsendQueryParams(k, "SELECT repeat($1::text, $2::int)", 2, NULL, pv, NULL, NULL, 0);
		break;
	case OP_CANCEL:
		if (c->variant % 2)
			ok = PQsendQuery(k, "SELECT pg_sleep(20)");
		else {
			pv[0] = "20";
			ok = PQsendQueryParams(k, "SELECT pg_sleep($1::float8)", 1, NULL, pv, NULL, NULL, 0);
		}
		c->cancel_at = mono() + 0.2 + rnd01(c) * 0.5;
		break;
	default:
		break;
	}
	return ok && flush_out(c);
}

/* Push COPY rows. false: the client's connection is gone (or was dropped on purpose). */
static bool copy_in_pump(struct client *c)
{
	size_t budget = 256 * 1024;   /* then let the other clients of this thread run */
	while (!c->copy_end_sent && !c->want_write && budget > 0) {
		if (c->pend_len == 0 && c->rows_done < c->n) {
			if (c->pend_cap < 40000) {
				free(c->pend);
				c->pend_cap = 40000;
				c->pend = malloc(c->pend_cap);
				if (!c->pend)
					abort();
			}
			while (c->rows_done < c->n && c->pend_len < 32768) {
				if (c->copy_fail && c->rows_done == c->n / 2)
					break;
				c->rows_done++;
				c->pend_len += copy_row(c, c->pend + c->pend_len, c->rows_done);
			}
		}
		if (c->pend_len > 0) {
			int r = PQputCopyData(c->conn, c->pend, (int)c->pend_len);
			if (r < 0)
				return false;
			if (r == 0) {
				c->want_write = true;
				break;
			}
			budget = budget > c->pend_len ? budget - c->pend_len : 0;
			c->pend_len = 0;
		} else {
			int r = PQputCopyEnd(c->conn, c->copy_fail ? "soak: client gives up" : NULL);
			if (r < 0)
				return false;
			if (r == 0) {
				c->want_write = true;
				break;
			}
			c->copy_end_sent = true;
			c->copy_in = false;
			ADD(K.rows_in, (unsigned long long)c->rows_done);
		}
		if (!flush_out(c))
			return false;
		if (c->abort_after_rows >= 0 && c->rows_done >= c->abort_after_rows) {
			INC(K.aborted[c->op]);
			drop_connection(c, rnd01(c) < 0.5);
			set_wait(c, rnd01(c) * 0.1);
			return false;
		}
	}
	return true;
}

/* Read COPY rows. false: the connection was dropped on purpose. */
static bool copy_out_pump(struct client *c)
{
	for (;;) {
		char *buf = NULL;
		int len = PQgetCopyData(c->conn, &buf, 1);
		if (len == 0)
			return true;
		if (len < 0) {
			c->copy_out = false;   /* -1 done, -2 error: PQgetResult reports it */
			if (buf)
				PQfreemem(buf);
			return true;
		}
		int i = ++c->rows_done;
		char line[64];
		int ll = snprintf(line, sizeof(line), "%d\t%s\n", i, i <= MD5_TABLE_MAX ? md5_of_int[i] : "?");
		if (len != ll || memcmp(buf, line, (size_t)ll) != 0)
			op_note(c, BAD_WRONG, "copy out row %d: '%.*s'", i, len > 60 ? 60 : len, buf);
		PQfreemem(buf);
		if (c->abort_after_rows >= 0 && c->rows_done >= c->abort_after_rows) {
			INC(K.aborted[c->op]);
			drop_connection(c, rnd01(c) < 0.5);
			set_wait(c, rnd01(c) * 0.1);
			return false;
		}
	}
}

/* ------------------------------------------------------------------ receiving */

static void series_check(struct client *c, const PGresult *r)
{
	if (!want_rows(c, r, c->n, 2))
		return;
	ADD(K.rows_out, (unsigned long long)c->n);
	for (int i = 0; i < c->n; i++) {
		char num[16];
		snprintf(num, sizeof(num), "%d", i + 1);
		if (!want_cell(c, r, i, 0, num) || !want_cell(c, r, i, 1, md5_of_int[i + 1]))
			return;
	}
}

static void step_result(struct client *c, const PGresult *r)
{
	int i = c->nres++;
	char e[128], m[33];
	if (c->stray && PQresultStatus(r) != PGRES_PIPELINE_SYNC)
		return;   /* what follows a stray cancel in this operation proves nothing */
	if (PQresultStatus(r) == PGRES_FATAL_ERROR && !strcmp(sqlstate_of(r), "57014") &&
	    !(c->op == OP_CANCEL && c->cancel_sent) && !(c->op == OP_COPY_IN && c->step == 0 && c->copy_fail) &&
	    c->last_cancel_end > 0 && mono() - c->last_cancel_end < 2.0) {
		c->stray = true;
		return;
	}
	if (scripted(c->op)) {
		struct sstep *s = &c->sc[c->step];
		if (i > 0) {
			op_note(c, BAD_WRONG, "step %d: a second result (%s)", c->step, PQresStatus(PQresultStatus(r)));
			return;
		}
		if (s->kind == 'E')
			want_error(c, r, s->v0);
		else if (s->kind == 'C')
			want_command(c, r, s->v0);
		else if (want_rows(c, r, 1, PQnfields(r) > 0 ? PQnfields(r) : 1) && s->v0[0])
			want_cell(c, r, 0, 0, s->v0);
		return;
	}
	switch (c->op) {
	case OP_SIMPLE:
		if (i > 0 || !want_rows(c, r, 1, 3))
			break;
		snprintf(e, sizeof(e), "%s!", c->s);
		md5_hex(c->s, strlen(c->s), m);
		(void)(want_cell_ll(c, r, 0, 0, c->a * c->b) && want_cell(c, r, 0, 1, m) && want_cell(c, r, 0, 2, e));
		break;
	case OP_MULTI:
		if (i == 0 && want_rows(c, r, 1, 1))
			want_cell_ll(c, r, 0, 0, c->a + 1);
		else if (i == 1 && want_rows(c, r, 1, 1))
			want_cell(c, r, 0, 0, c->s);
		else if (i == 2 && want_rows(c, r, 2, 1))
			(void)(want_cell_ll(c, r, 0, 0, c->a) && want_cell_ll(c, r, 1, 0, c->b));
		else if (i > 2)
			op_note(c, BAD_WRONG, "a fourth result");
		break;
	case OP_PARAMS:
		if (i > 0 || !want_rows(c, r, 1, 3))
			break;
		snprintf(e, sizeof(e), "%s", c->s);
		for (char *p = e; *p; p++)
			if (*p >= 'a' && *p <= 'z')
				*p = (char)(*p - 'a' + 'A');
		(void)(want_cell_ll(c, r, 0, 0, c->a + c->b) && want_cell(c, r, 0, 1, e) &&
		       want_cell_ll(c, r, 0, 2, (long long)strlen(c->s)));
		break;
	case OP_PREPARED:
		if (c->step == 0) {
			if (want_command(c, r, NULL))
				c->prepared = true;
		} else if (i == 0 && want_rows(c, r, 1, 2)) {
			md5_hex(c->s, strlen(c->s), m);
			(void)(want_cell_ll(c, r, 0, 0, c->a * 2) && want_cell(c, r, 0, 1, m));
		}
		break;
	case OP_SERIES:
		if (i == 0)
			series_check(c, r);
		break;
	case OP_PIPELINE: {
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_PIPELINE_SYNC) {
			if (c->pl_idx != c->pl_n)
				op_note(c, BAD_WRONG, "pipeline sync after %d of %d queries", c->pl_idx, c->pl_n);
			c->pl_synced = true;
			if (PQexitPipelineMode(c->conn))
				c->step_done = true;
			break;
		}
		int q = c->pl_idx;
		c->pl_got = true;
		if (q >= c->pl_n)
			op_note(c, BAD_WRONG, "pipeline: result for query %d of %d", q, c->pl_n);
		else if (c->pl_deny >= 0 && q == c->pl_deny)
			want_error(c, r, "42501");
		else if (c->pl_deny >= 0 && q > c->pl_deny) {
			if (st != PGRES_PIPELINE_ABORTED)
				op_note(c, BAD_WRONG, "pipeline query %d after the denied one: %s", q, PQresStatus(st));
		} else if (want_rows(c, r, 1, 1))
			want_cell_ll(c, r, 0, 0, c->pl_val[q] * 3);
		break;
	}
	case OP_COPY_IN:
		if (c->step == 0) {
			if (c->copy_fail) {
				if (want_error(c, r, "57014"))
					INC(K.copy_fail_ok);
			}
			else if (want_command(c, r, "COPY")) {
				snprintf(e, sizeof(e), "COPY %d", c->n);
				want_command(c, r, e);
			}
		} else if (c->step == 1) {
			if (!want_rows(c, r, 1, 3))
				break;
			if (c->copy_fail) {
				want_cell(c, r, 0, 0, "0");
				break;
			}
			md5_final_hex(c->md, m);
			(void)(want_cell_ll(c, r, 0, 0, c->n) && want_cell_ll(c, r, 0, 1, c->sum) &&
			       want_cell(c, r, 0, 2, m));
		} else {
			snprintf(e, sizeof(e), "DELETE %d", c->copy_fail ? 0 : c->n);
			want_command(c, r, e);
		}
		break;
	case OP_COPY_OUT:
		if (want_command(c, r, "COPY")) {
			snprintf(e, sizeof(e), "COPY %d", c->n);
			if (want_command(c, r, e) && c->rows_done != c->n)
				op_note(c, BAD_WRONG, "copy out: %d rows received, tag says %d", c->rows_done, c->n);
			ADD(K.rows_out, (unsigned long long)c->rows_done);
		}
		break;
	case OP_BIG_UP:
	case OP_BIG_LITERAL:
		if (i == 0 && want_rows(c, r, 1, 2))
			(void)(want_cell(c, r, 0, 0, c->bigmd5) && want_cell_ll(c, r, 0, 1, (long long)c->biglen));
		break;
	case OP_BIG_DOWN:
		if (i == 0 && want_rows(c, r, 1, 1)) {
			const char *v = PQgetvalue(r, 0, 0);
			size_t len = (size_t)PQgetlength(r, 0, 0);
			ADD(K.bytes_down, len);
			if (len != (size_t)c->n * 61)
				op_note(c, BAD_WRONG, "repeat(): %zu bytes, expected %zu", len, (size_t)c->n * 61);
			else
				for (size_t off = 0; off < len; off += 61)
					if (memcmp(v + off, c->s, 61) != 0) {
						op_note(c, BAD_WRONG, "repeat(): bytes differ at %zu", off);
						break;
					}
		}
		break;
	case OP_CANCEL:
		if (PQresultStatus(r) == PGRES_TUPLES_OK && c->cancel_sent) {
			INC(K.cancel_lost);
			anomaly("slot %d %s port %d: cancel %s: the pg_sleep(20) was not cancelled", c->slot,
				prof_name[c->prof], c->lport, c->variant % 2 ? "simple" : "extended");
		} else if (!c->cancel_sent) {
			char msg[160];
			one_line(msg, sizeof(msg), PQresultErrorMessage(r));
			op_note(c, BAD_WRONG, "pg_sleep ended %.3f s after it was sent, before the cancel was: %s %s %s",
				mono() - c->op_started, PQresStatus(PQresultStatus(r)), sqlstate_of(r), msg);
		} else if (want_error(c, r, "57014"))
			INC(K.cancel_ok);
		break;
	default:
		break;
	}
}

static int expected_results(struct client *c)
{
	if (c->op == OP_MULTI)
		return 3;
	return 1;
}

/* PQgetResult returned NULL. true: the step is complete. */
static bool step_null(struct client *c)
{
	if (c->op == OP_PIPELINE) {
		if (c->pl_synced)
			return PQexitPipelineMode(c->conn) != 0;
		if (!c->pl_got)
			op_note(c, BAD_WRONG, "pipeline query %d: no result", c->pl_idx);
		c->pl_idx++;
		c->pl_got = false;
		return false;
	}
	int want = expected_results(c);
	/* A denied statement in a transaction: DDL in DENY's script only ever has one. */
	if (c->nres != want && c->bad == BAD_NONE)
		op_note(c, BAD_WRONG, "step %d: %d results, expected %d", c->step, c->nres, want);
	return true;
}

/* ------------------------------------------------------------------ operation life */

static void op_end(struct client *c);

static void op_begin(struct client *c)
{
	c->op = pick_op(c);
	c->step = 0;
	c->bad = BAD_NONE;
	c->stray = false;
	c->why[0] = 0;
	c->cancel_at = c->abort_at = 0;
	c->abort_after_rows = -1;
	c->copy_in = c->copy_out = false;
	op_setup(c);
	double now = mono();
	c->op_started = now;
	c->deadline = now + opt_op_timeout;
	if (op_abortable[c->op] && chance(c, opt_abort_pct)) {
		c->abort_at = now + rnd01(c) * 0.3;
		c->abort_rst = rnd01(c) < 0.5;
	}
	c->st = CS_OP;
	if (!step_send(c)) {
		op_note(c, BAD_ERROR, "step %d: send failed: %s", c->step, PQerrorMessage(c->conn));
		op_end(c);
	}
}

static void op_end(struct client *c)
{
	bool stopping = atomic_load(&g_stop) || mono() >= t_close;
	if (c->op == OP_CANCEL)
		c->last_cancel_end = mono();
	if (c->stray) {
		INC(K.stray_cancels);
		anomaly("slot %d %s port %d op %s: stray cancel: 57014 %.3f s after the previous operation's "
			"cancel (not counted)", c->slot, prof_name[c->prof], c->lport, op_name[c->op],
			mono() - c->last_cancel_end);
		c->bad = BAD_NONE;
		close_graceful(c);   /* a script may have been left inside its transaction */
		if (stopping)
			c->st = CS_DONE;
		else
			set_wait(c, 0.1);
		return;
	}
	if (c->bad == BAD_NONE && PQtransactionStatus(c->conn) != PQTRANS_IDLE)
		op_note(c, BAD_WRONG, "transaction status %d after the operation", (int)PQtransactionStatus(c->conn));
	if (c->bad == BAD_NONE)
		INC(K.ok[c->op]);
	else {
		char key[160];
		if (c->bad == BAD_WRONG)
			INC(K.wrong[c->op]);
		else
			INC(K.err[c->op]);
		/* The kind without the values: "op: step N: unexpected … SQLSTATE". */
		snprintf(key, sizeof(key), "%s %s: %.100s", c->bad == BAD_WRONG ? "WRONG" : "error", op_name[c->op], c->why);
		char *p = strstr(key, ": '");
		if (p)
			*p = 0;
		count_error_kind(key);
		anomaly("slot %d %s port %d op %s: %s: %s", c->slot, prof_name[c->prof], c->lport, op_name[c->op],
			c->bad == BAD_WRONG ? "WRONG" : "ERROR", c->why);
	}
	bool broken = !c->conn || PQstatus(c->conn) != CONNECTION_OK;
	op_cleanup(c);
	if (stopping) {
		close_graceful(c);
		c->st = CS_DONE;
	} else if (broken || c->bad != BAD_NONE || PQtransactionStatus(c->conn) != PQTRANS_IDLE) {
		/* Start clean after anything odd. */
		close_graceful(c);
		set_wait(c, 0.2 + rnd01(c) * 0.5);
	} else if (mono() < t_end && chance(c, opt_graceful_pct)) {
		INC(K.graceful);
		close_graceful(c);
		set_wait(c, rnd01(c) * 0.1);
	} else {
		c->st = CS_IDLE;
		c->wake_at = mono() + rnd01(c) * opt_think_ms / 1000.0;
	}
}

/* Results available: consume them. */
static void op_drain(struct client *c)
{
	for (;;) {
		if (c->copy_out) {
			if (!copy_out_pump(c) || c->copy_out)
				return;
		}
		if (c->copy_in)
			return;
		if (PQisBusy(c->conn))
			return;
		PGresult *r = PQgetResult(c->conn);
		bool done;
		if (!r)
			done = step_null(c);
		else {
			ExecStatusType st = PQresultStatus(r);
			if (st == PGRES_COPY_IN) {
				PQclear(r);
				c->copy_in = true;
				if (c->op != OP_COPY_IN) {
					op_note(c, BAD_WRONG, "unexpected COPY IN");
					PQputCopyEnd(c->conn, "soak: unexpected COPY");
				} else if (!copy_in_pump(c)) {
					if (c->st == CS_OP) {
						op_note(c, BAD_ERROR, "step %d: COPY data: %s", c->step, PQerrorMessage(c->conn));
						op_end(c);
					}
					return;
				}
				if (c->copy_in)
					return;
				continue;
			}
			if (st == PGRES_COPY_OUT) {
				PQclear(r);
				c->copy_out = true;
				if (c->op != OP_COPY_OUT)
					op_note(c, BAD_WRONG, "unexpected COPY OUT");
				continue;
			}
			step_result(c, r);
			PQclear(r);
			done = c->step_done;
			if (!done && PQstatus(c->conn) == CONNECTION_BAD) {
				if (c->bad == BAD_NONE)
					op_note(c, BAD_ERROR, "step %d: connection lost: %s", c->step, PQerrorMessage(c->conn));
				op_end(c);
				return;
			}
		}
		if (!done)
			continue;
		/* The step is over. A failed step ends the operation, unless an error was the
		 * expected answer (scripted 'E' steps, a denied pipeline query). */
		if (c->bad != BAD_NONE || c->stray || ++c->step >= c->nsteps) {
			op_end(c);
			return;
		}
		if (!step_send(c)) {
			op_note(c, BAD_ERROR, "step %d: send failed: %s", c->step, PQerrorMessage(c->conn));
			op_end(c);
			return;
		}
	}
}

/*
 * PQconsumeInput reads one TLS record at most into the room left in libpq's buffer; the rest
 * of a record stays decrypted inside OpenSSL, where poll() cannot see it, and the client
 * would wait for data that already arrived (libpq's own blocking calls check for it). Read
 * until OpenSSL holds nothing back.
 */
static bool consume(struct client *c)
{
	SSL *ssl = PQsslStruct(c->conn, "OpenSSL");
	do {
		if (!PQconsumeInput(c->conn))
			return false;
	} while (ssl && SSL_pending(ssl) > 0);
	return true;
}

/* Bytes the kernel holds for this connection (0 when it cannot tell). */
static int readable(struct client *c)
{
	int n = 0;
	if (ioctl(PQsocket(c->conn), FIONREAD, &n) != 0)
		return 0;
	return n;
}

static void op_io_once(struct client *c, short revents);

/*
 * One poll() wake-up of a client in an operation. A pass reads what libpq takes at once
 * (16 KiB or so); on a loaded machine a loop over hundreds of clients can take a second, so a
 * large result would crawl at one pass per loop: keep going while the socket has more (up to
 * about 1 MiB, so the other clients get their turn).
 */
static void op_io(struct client *c, short revents)
{
	op_io_once(c, revents);
	for (int i = 0; i < 64 && c->st == CS_OP && c->conn && readable(c) > 0; i++)
		op_io_once(c, POLLIN);
}

static void op_io_once(struct client *c, short revents)
{
	if (revents & (POLLIN | POLLERR | POLLHUP)) {
		if (!consume(c)) {
			op_note(c, BAD_ERROR, "step %d: connection lost: %s", c->step, PQerrorMessage(c->conn));
			op_end(c);
			return;
		}
	}
	if (c->want_write && !flush_out(c)) {
		op_note(c, BAD_ERROR, "step %d: write failed: %s", c->step, PQerrorMessage(c->conn));
		op_end(c);
		return;
	}
	if (c->copy_in && !c->want_write && !c->copy_end_sent) {
		if (!copy_in_pump(c)) {
			if (c->st == CS_OP) {
				op_note(c, BAD_ERROR, "step %d: COPY data: %s", c->step, PQerrorMessage(c->conn));
				op_end(c);
			}
			return;
		}
	}
	op_drain(c);
}

/* Timers of one client: wake-ups, deadlines, cancels, planned disconnects. */
static void client_timers(struct client *c, double now, bool stopping)
{
	switch (c->st) {
	case CS_WAIT:
		if (stopping)
			c->st = CS_DONE;
		else if (now >= c->wake_at)
			start_connect(c);
		break;
	case CS_IDLE:
		if (stopping) {
			close_graceful(c);
			c->st = CS_DONE;
		} else if (now >= t_end)
			c->wake_at = t_close;   /* hold: logged in, idle */
		else if (now >= c->wake_at)
			op_begin(c);
		break;
	case CS_CONNECTING:
		if (c->abort_at && now >= c->abort_at) {
			INC(K.login_aborts);
			drop_connection(c, rnd01(c) < 0.5);
			set_wait(c, rnd01(c) * 0.1);
		} else if (now >= c->deadline)
			login_failed(c, "timed out");
		else if (stopping && now >= t_close + 30) {
			close_graceful(c);
			c->st = CS_DONE;
		}
		break;
	case CS_OP:
		if (c->cancel_at && now >= c->cancel_at) {
			c->cancel_at = 0;
			PGcancel *pc = PQgetCancel(c->conn);
			if (pc) {
				c->cancel_sent = true;
				INC(K.cancels_sent);
				cancel_enqueue(pc);
			}
		}
		if (c->abort_at && now >= c->abort_at) {
			INC(K.aborted[c->op]);
			drop_connection(c, c->abort_rst);
			set_wait(c, rnd01(c) * 0.1);
		} else if (now >= c->deadline || (stopping && now >= t_close + 60)) {
			INC(K.timeouts);
			op_note(c, BAD_ERROR, "step %d: no answer after %.0f s", c->step, now - c->op_started);
			/* op_end() would reuse the connection; this one is stuck: drop it. */
			INC(K.err[c->op]);
			char key[160];
			snprintf(key, sizeof(key), "error %s: timeout in step %d", op_name[c->op], c->step);
			count_error_kind(key);
			SSL *ssl = PQsslStruct(c->conn, "OpenSSL");
			anomaly("slot %d %s port %d op %s: ERROR: %s (busy %d, rows %d, want_write %d, copy in/out %d/%d, "
				"TLS bytes pending %d)", c->slot, prof_name[c->prof], c->lport, op_name[c->op], c->why,
				PQisBusy(c->conn), c->rows_done, c->want_write, c->copy_in, c->copy_out,
				ssl ? SSL_pending(ssl) : -1);
			close_abrupt(c, true);
			if (stopping)
				c->st = CS_DONE;
			else
				set_wait(c, 1);
		}
		break;
	default:
		break;
	}
}

static double client_next(const struct client *c)
{
	double t = 1e300;
	switch (c->st) {
	case CS_WAIT:
	case CS_IDLE:
		t = c->wake_at;
		break;
	case CS_CONNECTING:
		t = c->deadline;
		if (c->abort_at && c->abort_at < t)
			t = c->abort_at;
		break;
	case CS_OP:
		t = c->deadline;
		if (c->cancel_at && c->cancel_at < t)
			t = c->cancel_at;
		if (c->abort_at && c->abort_at < t)
			t = c->abort_at;
		break;
	default:
		break;
	}
	return t;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct pollfd *pfd = calloc((size_t)w->n, sizeof(*pfd));
	struct client **pc = calloc((size_t)w->n, sizeof(*pc));
	if (!pfd || !pc)
		abort();
	for (;;) {
		double now = mono();
		bool stopping = atomic_load(&g_stop) || now >= t_close;
		double next = now + 0.1;
		int np = 0, live = 0, nop = 0;
		for (int i = 0; i < w->n; i++) {
			struct client *c = &w->c[i];
			client_timers(c, now, stopping);
			if (c->st == CS_DONE)
				continue;
			live++;
			nop += c->st == CS_OP;
			short ev = 0;
			if (c->st == CS_CONNECTING)
				ev = c->poll_want == PGRES_POLLING_READING ? POLLIN : POLLOUT;
			else if (c->st == CS_OP)   /* COPY data to push: wait until it can go */
				ev = (short)(POLLIN | (c->want_write || (c->copy_in && !c->copy_end_sent) ? POLLOUT : 0));
			if (ev && PQsocket(c->conn) >= 0) {
				pfd[np].fd = PQsocket(c->conn);
				pfd[np].events = ev;
				pfd[np].revents = 0;
				pc[np++] = c;
			}
			double t = client_next(c);
			if (t < next)
				next = t;
		}
		atomic_store(&w->n_op, nop);
		if (!live)
			break;
		int ms = (int)ceil((next - now) * 1000);
		if (ms < 0)
			ms = 0;
		int n = poll(pfd, (nfds_t)np, ms);
		if (n < 0 && errno != EINTR) {
			perror("poll");
			abort();
		}
		for (int k = 0; n > 0 && k < np; k++) {
			if (!pfd[k].revents)
				continue;
			struct client *c = pc[k];
			if (c->st == CS_CONNECTING)
				connect_poll(c);
			else if (c->st == CS_OP)
				op_io(c, pfd[k].revents);
		}
	}
	free(pfd);
	free(pc);
	atomic_fetch_add(&g_workers_done, 1);
	return NULL;
}

/* ------------------------------------------------------------------ stats */

static unsigned long long sum_of(atomic_ullong *a)
{
	unsigned long long s = 0;
	for (int i = 0; i < OP__COUNT; i++)
		s += GET(a[i]);
	return s;
}

static void write_stats(FILE *f, bool done)
{
	unsigned long long logins = 0;
	for (int i = 0; i < PR__COUNT; i++)
		logins += GET(K.logins[i]);
	double now = mono();
	int in_op = 0;
	for (int i = 0; i < g_nworkers; i++)
		in_op += atomic_load(&g_workers[i].n_op);
	fprintf(f, "elapsed %.1f\n", now - t_start);
	fprintf(f, "done %d\n", done ? 1 : 0);
	fprintf(f, "phase %s\n", done ? "done" : now < t_load ? "warm" : now < t_end ? "load" : now < t_close ? "hold" : "closing");
	fprintf(f, "in_op %d\n", in_op);
	fprintf(f, "connected %lld\n", (long long)GET(K.connected));
	fprintf(f, "ops_ok %llu\nops_wrong %llu\nops_error %llu\nops_aborted %llu\n",
		sum_of(K.ok), sum_of(K.wrong), sum_of(K.err), sum_of(K.aborted));
	fprintf(f, "logins %llu\nlogin_errors %llu\nlogin_aborts %llu\n", logins, GET(K.login_err), GET(K.login_aborts));
	fprintf(f, "disconnects_graceful %llu\ndisconnects_rst %llu\ndisconnects_fin %llu\ntimeouts %llu\n",
		GET(K.graceful), GET(K.aborts_rst), GET(K.aborts_fin), GET(K.timeouts));
	fprintf(f, "cancels_sent %llu\ncancels_ok %llu\ncancels_lost %llu\nstray_cancels %llu\ncancel_send_errors %llu\n",
		GET(K.cancels_sent), GET(K.cancel_ok), GET(K.cancel_lost), GET(K.stray_cancels), GET(K.cancel_send_err));
	fprintf(f, "cancel_queue_ms_max %llu\ncancel_call_ms_max %llu\ncancel_call_ms_avg %llu\n",
		atomic_load(&cancel_wait_ms_max), atomic_load(&cancel_call_ms_max),
		GET(K.cancels_sent) ? atomic_load(&cancel_call_ms_sum) / GET(K.cancels_sent) : 0);
	fprintf(f, "denied_ok %llu\ncopy_fail_ok %llu\nnotices %llu\n", GET(K.denied_ok), GET(K.copy_fail_ok), GET(K.notices));
	fprintf(f, "rows_in %llu\nrows_out %llu\nbytes_up %llu\nbytes_down %llu\n",
		GET(K.rows_in), GET(K.rows_out), GET(K.bytes_up), GET(K.bytes_down));
	for (int i = 0; i < PR__COUNT; i++)
		fprintf(f, "logins.%s %llu\n", prof_name[i], GET(K.logins[i]));
	for (int i = 0; i < OP__COUNT; i++)
		fprintf(f, "op.%s %llu %llu %llu %llu\n", op_name[i], GET(K.ok[i]), GET(K.wrong[i]), GET(K.err[i]),
			GET(K.aborted[i]));
	pthread_mutex_lock(&err_mu);
	for (int i = 0; i < err_nkinds; i++)
		fprintf(f, "kind %llu %s\n", err_kind[i].n, err_kind[i].key);
	if (err_other)
		fprintf(f, "kind %llu (other kinds)\n", err_other);
	pthread_mutex_unlock(&err_mu);
}

static void stats_file(bool done)
{
	if (!opt_stats)
		return;
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", opt_stats);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return;
	write_stats(f, done);
	if (fclose(f) == 0)
		rename(tmp, opt_stats);
}

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&g_stop, 1);
}

/* "all=0,simple=5,params=5": weights in order; "all" sets every operation. */
static bool parse_ops(const char *spec)
{
	char *dup = strdup(spec), *save = NULL;
	bool ok = dup != NULL;
	for (char *t = dup ? strtok_r(dup, ",", &save) : NULL; ok && t; t = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(t, '=');
		if (!eq || eq[1] < '0' || eq[1] > '9') {
			ok = false;
			break;
		}
		*eq = 0;
		int w = atoi(eq + 1), hit = 0;
		for (int i = 0; i < OP__COUNT; i++)
			if (!strcmp(t, "all") || !strcmp(t, op_name[i])) {
				op_weight[i] = w;
				hit++;
			}
		if (!hit) {
			fprintf(stderr, "soak_client: unknown operation '%s'\n", t);
			ok = false;
		}
	}
	free(dup);
	return ok;
}

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [--clients N] [--threads T] [--duration S] [--host H] [--port P] [--user U]\n"
		"          [--db DB] [--tls-db DB] [--tls-share F] [--scram-user U --scram-password P]\n"
		"          [--stats FILE] [--think-ms MS] [--abort-pct P] [--graceful-pct P]\n"
		"          [--big-max-kb KB] [--ramp S] [--op-timeout S] [--seed N] [--ops NAME=W,...]\n"
		"          [--warm S] [--hold S]\n"
		"operations: simple multi params prepared series pipeline copy_in copy_out big_up\n"
		"            big_literal big_down cancel ddl_tx alter deny tx_err (--ops all=0,simple=1 …)\n", argv0);
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "clients", 1, 0, 'n' }, { "threads", 1, 0, 't' }, { "duration", 1, 0, 'd' },
		{ "host", 1, 0, 'H' }, { "port", 1, 0, 'p' }, { "user", 1, 0, 'U' }, { "db", 1, 0, 'D' },
		{ "tls-db", 1, 0, 'T' }, { "tls-share", 1, 0, 's' }, { "scram-user", 1, 0, 'u' },
		{ "scram-password", 1, 0, 'w' }, { "stats", 1, 0, 'S' }, { "think-ms", 1, 0, 'k' },
		{ "abort-pct", 1, 0, 'a' }, { "graceful-pct", 1, 0, 'g' }, { "big-max-kb", 1, 0, 'b' },
		{ "ramp", 1, 0, 'r' }, { "op-timeout", 1, 0, 'o' }, { "seed", 1, 0, 'z' }, { "ops", 1, 0, 'O' },
		{ "warm", 1, 0, 'W' }, { "hold", 1, 0, 'L' }, { 0, 0, 0, 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'n': opt_clients = atoi(optarg); break;
		case 't': opt_threads = atoi(optarg); break;
		case 'd': opt_duration = atof(optarg); break;
		case 'H': opt_host = optarg; break;
		case 'p': opt_port = optarg; break;
		case 'U': opt_user = optarg; break;
		case 'D': opt_db = optarg; break;
		case 'T': opt_tls_db = *optarg ? optarg : NULL; break;
		case 's': opt_tls_share = atof(optarg); break;
		case 'u': opt_scram_user = *optarg ? optarg : NULL; break;
		case 'w': opt_scram_password = optarg; break;
		case 'S': opt_stats = optarg; break;
		case 'k': opt_think_ms = atoi(optarg); break;
		case 'a': opt_abort_pct = atof(optarg); break;
		case 'g': opt_graceful_pct = atof(optarg); break;
		case 'b': opt_big_max_kb = atoi(optarg); break;
		case 'r': opt_ramp = atof(optarg); break;
		case 'o': opt_op_timeout = atof(optarg); break;
		case 'z': opt_seed = strtoull(optarg, NULL, 10); break;
		case 'O': opt_ops = optarg; break;
		case 'W': opt_warm = atof(optarg); break;
		case 'L': opt_hold = atof(optarg); break;
		default: usage(argv[0]);
		}
	}
	if (optind != argc || opt_clients <= 0 || opt_threads <= 0 || opt_duration <= 0 || opt_big_max_kb < 1)
		usage(argv[0]);
	if (opt_threads > opt_clients)
		opt_threads = opt_clients;
	if (!opt_seed)
		opt_seed = (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 20);

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	g_devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (g_devnull < 0) {
		perror("/dev/null");
		return 2;
	}

	if (opt_ops && !parse_ops(opt_ops))
		usage(argv[0]);
	for (int i = 0; i < OP__COUNT; i++)
		op_weight_total += op_weight[i];
	if (op_weight_total <= 0)
		usage(argv[0]);
	md5_table_init();
	t_start = mono();
	t_load = t_start + opt_warm;
	t_end = t_load + opt_duration;
	t_close = t_end + opt_hold;
	struct client *all = calloc((size_t)opt_clients, sizeof(*all));
	struct worker *w = calloc((size_t)opt_threads, sizeof(*w));
	if (!all || !w)
		return 2;
	for (int i = 0; i < opt_clients; i++) {
		struct client *c = &all[i];
		c->slot = i;
		c->rng = (opt_seed + 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1)) | 1;
		for (int j = 0; j < 4; j++)
			xs_next(&c->rng);
		c->md = EVP_MD_CTX_new();
		if (!c->md)
			return 2;
		c->abort_after_rows = -1;
		c->st = CS_WAIT;
		c->wake_at = t_start + opt_ramp * i / opt_clients;
	}
	g_workers = w;
	g_nworkers = opt_threads;
	int per = opt_clients / opt_threads, extra = opt_clients % opt_threads, at = 0;
	for (int t = 0; t < opt_threads; t++) {
		w[t].c = all + at;
		w[t].n = per + (t < extra);
		at += w[t].n;
	}
	printf("soak_client: %d clients on %d threads for %.0f s against %s:%s (seed %llu)\n",
	       opt_clients, opt_threads, opt_duration, opt_host, opt_port, opt_seed);
	fflush(stdout);

	pthread_t cth[CANCEL_THREADS];
	for (int i = 0; i < CANCEL_THREADS; i++)
		pthread_create(&cth[i], NULL, cancel_main, NULL);
	for (int t = 0; t < opt_threads; t++)
		pthread_create(&w[t].th, NULL, worker_main, &w[t]);

	/* The workers end once every client is closed; until then, publish the counters. */
	while (atomic_load(&g_workers_done) < opt_threads) {
		stats_file(false);
		for (int i = 0; i < 10 && atomic_load(&g_workers_done) < opt_threads; i++)
			usleep(100 * 1000);
	}
	for (int t = 0; t < opt_threads; t++)
		pthread_join(w[t].th, NULL);
	pthread_mutex_lock(&cq_mu);
	cq_stop = true;
	pthread_cond_broadcast(&cq_cv);
	pthread_mutex_unlock(&cq_mu);
	for (int i = 0; i < CANCEL_THREADS; i++)
		pthread_join(cth[i], NULL);
	stats_file(true);

	unsigned long long wrong = sum_of(K.wrong), err = sum_of(K.err) + GET(K.login_err) + GET(K.cancel_send_err);
	write_stats(stdout, true);
	printf("soak_client: %s (%llu wrong answers, %llu unexpected errors)\n",
	       wrong || err ? "FAILED" : "ok", wrong, err);
	for (int i = 0; i < opt_clients; i++) {
		EVP_MD_CTX_free(all[i].md);
		free(all[i].pend);
	}
	free(all);
	free(w);
	return wrong || err ? 1 : 0;
}

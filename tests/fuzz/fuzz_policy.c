/*
 * fuzz_policy — the Lua statement object on arbitrary SQL (policies/engine.c, tree.c):
 * every statement of the input goes through policy_decide() the way `ddlguard check` and
 * the proxy call it, in one policy engine loaded once with
 *   - tests/fuzz/fuzz_policy.lua, which reads every field of the statement, its objects
 *     and sub-commands and the session, walks the whole stmt.tree, asks facts() and
 *     returns every kind of decision (including an overridable deny, so inline overrides
 *     in the input are looked for); and
 *   - the shipped rule library (lua-scripts/) in the strict profile, so every rule's check
 *     sees the statement too.
 *
 * Input: the text of a Query (it ends at the first NUL). Facts are invented from a hash of
 * the relation's name, so rules that ask for them take their other branches as well.
 * Transaction control in the input moves the session's transaction status, its list of
 * statements and its created objects as ddlguard check does.
 *
 * What must hold: no policy fails (an assert in fuzz_policy.lua, or a runtime error in a
 * shipped rule, is a crash here: with policy_failure = closed it would deny a harmless
 * statement) except by running out of its instruction budget, time or memory; and every
 * verdict is well formed.
 */
#include <string.h>

#include "policies/engine.h"
#include "policies/statement.h"
#include "tests/fuzz/fuzz.h"

#ifndef FUZZ_SRCDIR
#error "build with -DFUZZ_SRCDIR=\"<the source tree>\""
#endif

static struct policy_engine *engine;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char *files[] = { FUZZ_SRCDIR "/tests/fuzz/fuzz_policy.lua" };
	struct policy_options o = {
		.files = files, .nfiles = 1,
		.budget = 20000000,
		.mem_limit = 256u << 20,
		.library_dir = FUZZ_SRCDIR "/lua-scripts",
		.profile = "strict",
		.small_table_rows = 10000,
	};
	char err[1024];
	engine = policy_engine_load(&o, err, sizeof(err));
	if (!engine) {
		fprintf(stderr, "fuzz_policy: cannot load the policies: %s\n", err);
		exit(1);
	}
	(void)argc;
	(void)argv;
	return 0;
}

static uint32_t hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

/* facts(name): invented from the name, so that each relation always gets the same. */
static bool invent_facts(void *arg, const char *name, struct policy_facts *f)
{
	uint32_t h = hash(name);
	memset(f, 0, sizeof(*f));
	if (h % 7 == 0)
		return false;   /* could not be fetched */
	f->exists = h & 1;
	f->kind = "rpivmS"[h % 6];
	f->rows = h & 2 ? -1 : (long long)(h % 5) * 100000;
	f->bytes = (long long)h * 8192;
	f->indexes = (int)(h % 4);
	f->nholders = (int)(h / 7 % 3);
	for (int i = 0; i < f->nholders; i++) {
		struct policy_holder *ho = &f->holders[i];
		ho->pid = 1000 + i;
		snprintf(ho->mode, sizeof(ho->mode), "%s", i ? "AccessShareLock" : "RowExclusiveLock");
		ho->granted = i == 0;
		snprintf(ho->application_name, sizeof(ho->application_name), "app%d", i);
		snprintf(ho->state, sizeof(ho->state), "idle in transaction");
		ho->xact_age = (double)(h % 600);
		snprintf(ho->query, sizeof(ho->query), "SELECT %u", h);
	}
	(void)arg;
	return true;
}

static void check_verdict(const struct verdict *v, const struct stmt_info *st)
{
	if (v->policy_error) {
		const char *why = policy_last_error(engine);
		bool overrun = why && (strstr(why, "instruction budget exceeded") || strstr(why, "memory limit") ||
				       strstr(why, "time limit exceeded"));
		FUZZ_CHECK(overrun, "a policy failed on %s \"%.200s\": %s", st ? st->tag : "(end)",
			   st ? st->text : "", why ? why : "(no message)");
	}
	if (v->kind == VERDICT_DENY)
		FUZZ_CHECK(v->message && strlen(v->sqlstate) == 5, "malformed deny");
	for (int i = 0; i < v->nwarnings; i++)
		FUZZ_CHECK(v->warnings[i].message, "warning without a message");
	FUZZ_CHECK(v->lock_timeout_ms >= 0 && v->statement_timeout_ms >= 0, "negative timeout");
}

struct session_state {
	struct policy_tx_stmt tx[64];
	int ntx;
	char *created[64];
	int ncreated;
};

static void forget_tx(struct session_state *ss)
{
	for (int i = 0; i < ss->ntx; i++) {
		free(ss->tx[i].tag);
		free(ss->tx[i].text);
		free(ss->tx[i].strict_id);
		free(ss->tx[i].fingerprint);
		free(ss->tx[i].objects);
	}
	ss->ntx = 0;
}

static void remember(struct session_state *ss, const struct stmt_info *st, unsigned long seq)
{
	if (ss->ntx < 64) {
		struct policy_tx_stmt *t = &ss->tx[ss->ntx++];
		memset(t, 0, sizeof(*t));
		t->tag = strdup(st->tag);
		t->text = strdup(st->text);
		t->strict_id = strdup(st->strict_id_hex);
		t->fingerprint = strdup(st->fingerprint_hex);
		t->objects = strdup(st->nobjects ? st->objects[0].name : "");
		t->seq = seq;
	}
	for (int k = 0; k < st->nobjects && ss->ncreated < 64; k++) {
		const struct stmt_object *o = &st->objects[k];
		if (!o->created)
			continue;
		char name[600];
		snprintf(name, sizeof(name), "%s%s%s", o->schema ? o->schema : "", o->schema ? "." : "", o->name);
		ss->created[ss->ncreated++] = strdup(name);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned long inputs;
	char *sql = malloc(size + 1);
	if (!sql)
		return 0;
	memcpy(sql, data, size);
	sql[size] = 0;
	struct stmt_list l;
	if (!stmt_analyze(sql, &l)) {
		FUZZ_CHECK(l.too_deep, "stmt_analyze: out of memory");
		free(sql);
		return 0;
	}

	/* A session of its own per input: the engine's per-session caches key on cache_key. */
	inputs++;
	struct session_state ss = { .ntx = 0 };
	struct policy_session ps = {
		.user = "migrator", .database = "app", .application_name = "fuzz",
		.client_addr = "127.0.0.1", .environment = size & 1 ? "production" : "staging",
		.tls = size & 2, .tx_status = 'I', .facts = invent_facts, .facts_arg = NULL,
		.cache_key = inputs,
	};
	for (int i = 0; !l.parse_error && i < l.n; i++) {
		const struct stmt_info *st = &l.items[i];
		switch (st->txctl) {
		case STMT_TX_BEGIN:
			ps.tx_status = 'T';
			break;
		case STMT_TX_COMMIT:
		case STMT_TX_ROLLBACK:
			ps.tx = ss.tx;
			ps.ntx = ss.ntx;
			if (st->txctl == STMT_TX_COMMIT)
				policy_notify_commit(engine, &ps);
			forget_tx(&ss);
			ps.tx_status = 'I';
			break;
		default:
			break;
		}
		ps.tx = ss.tx;
		ps.ntx = ss.ntx;
		ps.created = ss.created;
		ps.ncreated = ss.ncreated;
		struct verdict v;
		verdict_init(&v);
		policy_decide(engine, sql, st, &ps, &v);
		check_verdict(&v, st);
		verdict_free(&v);
		if (st->ddl)
			remember(&ss, st, (unsigned long)i + 1);
	}
	ps.tx = ss.tx;
	ps.ntx = ss.ntx;
	ps.created = ss.created;
	ps.ncreated = ss.ncreated;
	struct verdict v;
	verdict_init(&v);
	policy_check_end(engine, &ps, &v);
	check_verdict(&v, NULL);
	verdict_free(&v);
	if (l.n) {
		struct policy_lock_wait w = { .waiting = true, .waited = (double)(size % 5), .nblockers = 1 };
		snprintf(w.mode, sizeof(w.mode), "AccessExclusiveLock");
		snprintf(w.relation, sizeof(w.relation), "%s", l.items[0].nobjects ? l.items[0].objects[0].name : "t");
		w.blockers[0] = (struct policy_holder){ .pid = 7, .granted = true, .xact_age = 3 };
		(void)policy_check_lock_wait(engine, &w, &ps);
	}

	forget_tx(&ss);
	for (int i = 0; i < ss.ncreated; i++)
		free(ss.created[i]);
	stmt_list_free(&l);
	free(sql);
	return 0;
}

/*
 * fuzz_statement — statement analysis on arbitrary SQL (policies/statement.c:
 * stmt_fast_path, stmt_analyze, stmt_normalize) and the inline-override scanner
 * (policies/override.c: stmt_find_override).
 *
 * Input: the text of a Query (it ends at the first NUL, as on the wire). What must hold:
 *   - the fast path is never true by mistake: a text it lets through is at most one
 *     statement that is not DDL, takes no lock above ROW EXCLUSIVE, may run in a
 *     transaction block and controls no transaction (and, with writes = false, is not a
 *     write either); the stricter mode never says yes where the other says no;
 *   - every statement's span lies inside the text and its text is that span; positions are
 *     1-based; names, tags, ids and the stored tree are all there;
 *   - a statement's own text, analysed alone, is one statement with the same strict id,
 *     tag and lock (the span is exactly the statement, so what is audited, fingerprinted
 *     and scanned for overrides is what runs);
 *   - the override scanner, given the statement's span and a rule named in the text,
 *     returns a terminated reason;
 *   - a text nested too deeply is refused (stmt_list.too_deep), never a crash.
 */
#include <string.h>

#include "policies/override.h"
#include "policies/statement.h"
#include "tests/fuzz/fuzz.h"

static void check_item(const char *sql, size_t len, const struct stmt_info *st)
{
	FUZZ_CHECK(st->offset <= len && st->length <= len - st->offset, "span %zu+%zu outside %zu bytes",
		   st->offset, st->length, len);
	FUZZ_CHECK(st->text && strlen(st->text) == st->length && !memcmp(st->text, sql + st->offset, st->length),
		   "text is not the span");
	FUZZ_CHECK(st->line >= 1 && st->column >= 1, "position %d:%d", st->line, st->column);
	FUZZ_CHECK(st->tag && st->node, "no tag or node");
	FUZZ_CHECK(st->lock >= STMT_LOCK_NONE && st->lock <= STMT_LOCK_ACCESS_EXCLUSIVE, "lock %d", st->lock);
	FUZZ_CHECK(strcmp(stmt_lock_name(st->lock), "?"), "lock without a name");
	FUZZ_CHECK(strlen(st->fingerprint_hex) == 16 && strlen(st->strict_id_hex) == 64, "ids");
	FUZZ_CHECK(st->tree && st->tree_len > 0, "no tree");
	FUZZ_CHECK(st->nobjects >= 0 && st->nsubcmds >= 0, "counts");
	FUZZ_CHECK(!st->savepoint || st->txctl != STMT_TX_NONE, "savepoint name without a transaction statement");
	for (int i = 0; i < st->nobjects; i++) {
		const struct stmt_object *o = &st->objects[i];
		FUZZ_CHECK(o->name && o->kind, "object %d without a name or kind", i);
		FUZZ_CHECK(o->lock >= STMT_LOCK_NONE && o->lock <= STMT_LOCK_ACCESS_EXCLUSIVE, "object lock");
		FUZZ_CHECK(o->created || o->lock <= st->lock, "object %s locked above its statement", o->name);
		(void)stmt_bookkeeping_tool(o->schema, o->name);
	}
	for (int i = 0; i < st->nsubcmds; i++) {
		const struct stmt_subcmd *c = &st->subcmds[i];
		FUZZ_CHECK(c->name, "subcommand %d without a name", i);
		FUZZ_CHECK(c->lock >= STMT_LOCK_NONE && c->lock <= STMT_LOCK_ACCESS_EXCLUSIVE, "subcommand lock");
	}
	(void)stmt_guarded(st);
	(void)stmt_is_write(st);
}

/* Analyse a statement's text alone: the same statement must come back. */
static void check_alone(const struct stmt_info *st)
{
	struct stmt_list one;
	FUZZ_CHECK(stmt_analyze(st->text, &one), "out of memory");
	FUZZ_CHECK(!one.parse_error, "statement \"%s\" does not parse alone: %s", st->text, one.error);
	FUZZ_CHECK(one.n == 1, "statement \"%s\" is %d statements alone", st->text, one.n);
	const struct stmt_info *a = &one.items[0];
	FUZZ_CHECK(!strcmp(a->strict_id_hex, st->strict_id_hex), "statement \"%s\" has another strict id alone",
		   st->text);
	FUZZ_CHECK(!strcmp(a->tag, st->tag) && a->lock == st->lock && a->ddl == st->ddl,
		   "statement \"%s\" is described differently alone", st->text);
	FUZZ_CHECK(a->offset == 0 && a->length == st->length, "span alone %zu+%zu", a->offset, a->length);
	stmt_list_free(&one);
}

/* The first rule named after "ddlguard:allow" in the text, if any. */
static void rule_in(const char *sql, char *rule, size_t n)
{
	const char *m = strstr(sql, "ddlguard:allow");
	rule[0] = 0;
	if (!m)
		return;
	m += strlen("ddlguard:allow");
	while (*m == ' ' || *m == '\t')
		m++;
	size_t k = 0;
	while (m[k] && m[k] != ' ' && m[k] != ',' && m[k] != '\n' && k + 1 < n) {
		rule[k] = m[k];
		k++;
	}
	rule[k] = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *sql = malloc(size + 1);
	if (!sql)
		return 0;
	memcpy(sql, data, size);
	sql[size] = 0;
	size_t len = strlen(sql);

	bool fast = stmt_fast_path(sql, len);
	bool fast_ro = stmt_fast_path_ex(sql, len, false);
	FUZZ_CHECK(!fast_ro || fast, "writes=false passed a text that writes=true refused");

	struct stmt_list l;
	bool analysed = stmt_analyze(sql, &l);
	/* Too deep to analyse is refused (the guard denies it), never a crash. */
	FUZZ_CHECK(analysed || l.too_deep, "stmt_analyze: out of memory");
	if (!analysed) {
		FUZZ_CHECK(l.n == 0 && !l.items && !l.error, "a refused text left results behind");
	} else if (l.parse_error) {
		FUZZ_CHECK(l.error && l.n == 0, "parse error without a message");
		FUZZ_CHECK(l.error_line >= 0 && l.error_column >= 0, "error position");
	} else {
		FUZZ_CHECK(!fast || l.n <= 1, "fast path passed %d statements", l.n);
		char rule[64];
		rule_in(sql, rule, sizeof(rule));
		for (int i = 0; i < l.n; i++) {
			const struct stmt_info *st = &l.items[i];
			check_item(sql, len, st);
			if (fast) {
				FUZZ_CHECK(!st->ddl && st->in_tx_block_ok && st->lock <= STMT_LOCK_ROW_EXCLUSIVE &&
					   st->txctl == STMT_TX_NONE,
					   "fast path passed %s (%s), lock %s", st->tag, st->node, stmt_lock_name(st->lock));
				FUZZ_CHECK(!fast_ro || !stmt_is_write(st), "read-only fast path passed %s", st->tag);
			}
			if (i < 4)
				check_alone(st);
			char reason[128];
			memset(reason, 'x', sizeof(reason));
			if (stmt_find_override(sql, st->offset, st->offset + st->length, rule[0] ? rule : "no-such-rule",
					       reason, sizeof(reason)))
				FUZZ_CHECK(memchr(reason, 0, sizeof(reason)), "reason not terminated");
		}
	}
	stmt_list_free(&l);

	char reason[16];
	if (stmt_find_override(sql, 0, len, "require-concurrent-index", reason, sizeof(reason)))
		FUZZ_CHECK(memchr(reason, 0, sizeof(reason)), "reason not terminated");
	char *norm = stmt_normalize(sql);
	free(norm);
	free(sql);
	return 0;
}

/* verdict — see verdict.h. */
#include "policies/verdict.h"

#include <stdlib.h>
#include <string.h>

static char *dup(const char *s)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		abort();
	return d;
}

void verdict_init(struct verdict *v)
{
	memset(v, 0, sizeof(*v));
}

void verdict_free(struct verdict *v)
{
	free(v->message);
	free(v->detail);
	free(v->hint);
	free(v->rule);
	free(v->overridden);
	for (int i = 0; i < v->nwarnings; i++) {
		free(v->warnings[i].rule);
		free(v->warnings[i].message);
		free(v->warnings[i].hint);
	}
	free(v->warnings);
	verdict_init(v);
}

void verdict_add_warning(struct verdict *v, const char *rule, const char *message, const char *hint)
{
	struct verdict_note *w = realloc(v->warnings, (v->nwarnings + 1) * sizeof(*w));
	if (!w)
		abort();
	v->warnings = w;
	w[v->nwarnings].rule = dup(rule);
	w[v->nwarnings].message = dup(message);
	w[v->nwarnings].hint = dup(hint);
	v->nwarnings++;
}

void verdict_deny(struct verdict *v, const char *sqlstate, const char *rule, const char *message,
		  const char *detail, const char *hint)
{
	if (v->kind == VERDICT_DENY)
		return; /* the first deny is the one reported */
	v->kind = VERDICT_DENY;
	memcpy(v->sqlstate, sqlstate && strlen(sqlstate) == 5 ? sqlstate : "42501", 6);
	v->rule = dup(rule);
	v->message = dup(message ? message : "statement denied by policy");
	v->detail = dup(detail);
	v->hint = dup(hint);
}

static int tighter(int a, int b)
{
	if (!a)
		return b;
	if (!b)
		return a;
	return a < b ? a : b;
}

void verdict_merge(struct verdict *a, struct verdict *b)
{
	if (b->kind == VERDICT_DENY && a->kind != VERDICT_DENY) {
		a->kind = VERDICT_DENY;
		memcpy(a->sqlstate, b->sqlstate, 6);
		a->message = b->message;
		a->detail = b->detail;
		a->hint = b->hint;
		a->rule = b->rule;
		a->overridable = b->overridable;
		b->message = b->detail = b->hint = b->rule = NULL;
	}
	a->lock_timeout_ms = tighter(a->lock_timeout_ms, b->lock_timeout_ms);
	a->statement_timeout_ms = tighter(a->statement_timeout_ms, b->statement_timeout_ms);
	a->policy_error |= b->policy_error;
	a->cancel |= b->cancel;
	for (int i = 0; i < b->nwarnings; i++)
		verdict_add_warning(a, b->warnings[i].rule, b->warnings[i].message, b->warnings[i].hint);
	if (b->overridden && !a->overridden) {
		a->overridden = b->overridden;
		b->overridden = NULL;
	}
	verdict_free(b);
}

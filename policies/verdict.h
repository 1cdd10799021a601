/*
 * verdict — what the policies decided about one statement (or one Query/Parse message).
 * Combination: deny beats everything; the tightest timeout wins; every warning is kept.
 */
#ifndef DDLG_VERDICT_H
#define DDLG_VERDICT_H

#include <stdbool.h>

enum verdict_kind { VERDICT_ALLOW = 0, VERDICT_DENY };

struct verdict_note {
	char *rule;                 /* may be NULL (owned) */
	char *message;              /* (owned) */
	char *hint;                 /* may be NULL (owned) */
};

struct verdict {
	enum verdict_kind kind;
	char sqlstate[6];           /* deny: default 42501 */
	char *message, *detail, *hint, *rule;   /* deny (owned) */
	bool overridable;           /* deny: an inline override may lift it */
	int nwarnings;
	struct verdict_note *warnings;          /* NoticeResponses to send (owned) */
	int lock_timeout_ms;        /* 0: not set */
	int statement_timeout_ms;
	bool policy_error;          /* a policy failed; with policy_failure=closed this denies */
	bool cancel;                /* on_lock_wait: cancel the waiting statement */
	char *overridden;           /* "rule (reason)" when an inline override lifted a deny (owned) */
};

void verdict_init(struct verdict *v);
void verdict_free(struct verdict *v);
/* Fold `b` into `a` (deny wins, tightest timeouts, warnings appended); empties b. */
void verdict_merge(struct verdict *a, struct verdict *b);
void verdict_add_warning(struct verdict *v, const char *rule, const char *message, const char *hint);
void verdict_deny(struct verdict *v, const char *sqlstate, const char *rule, const char *message,
		  const char *detail, const char *hint);

#endif

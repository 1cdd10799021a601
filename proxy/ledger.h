/*
 * ledger — staging first (DESIGN.md section 10).
 *
 * A guarded statement committed through a route whose environment is a staging one
 * (staging_environments) is recorded in the ledger table ddlguard.applied_change, by its
 * strict id (so DEFAULT 5 and DEFAULT 6 are different statements). Through a route whose
 * environment is gated (gated_environments), a guarded statement with no staging record is
 * denied, with the closest staging statement by fingerprint as the hint; a ledger that
 * cannot be reached denies too (fail closed). Only commits count: autocommit completion or
 * COMMIT, not a rolled-back transaction or savepoint. Migration tools' bookkeeping is exempt.
 *
 * The ledger lives in schema ddlguard of the first staging route's database (or at
 * `ledger`, a conninfo), reached on a side connection as monitor_user; ddlguard creates
 * the table when it records the first statement.
 */
#ifndef DDLG_LEDGER_H
#define DDLG_LEDGER_H

#include <stdbool.h>

#include "policies/verdict.h"

struct server;
struct session;
struct stmt_info;
struct stmt_list;

enum ledger_status { LEDGER_READY, LEDGER_PENDING };

bool ledger_is_staging(const struct session *s);
bool ledger_is_gated(const struct session *s);

/* Production: make sure the records of the statements' strict ids are cached. */
enum ledger_status ledger_prefetch(struct session *s, const struct stmt_list *l, bool just_fetched);
/* Production: deny (into v) a statement without a staging record. */
void ledger_gate(struct session *s, const struct stmt_info *st, struct verdict *v);
/* Staging: record the committed transaction's statements. */
void ledger_record_commit(struct session *s);
void ledger_forget_session(struct session *s);
void ledger_shutdown(struct server *srv);

#endif

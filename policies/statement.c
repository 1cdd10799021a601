/*
 * statement.c — statement analysis over libpg_query (see statement.h).
 *
 * Each statement of a text is parsed once into libpg_query's protobuf tree, described by
 * walking the generated PgQuery__* structs, and kept (locations zeroed) as protobuf bytes
 * for tree.c. Nothing here touches sockets or Lua, and nothing guesses from the text: a
 * statement is what PostgreSQL's own grammar says it is.
 *
 * What the fields mean, where the header leaves room:
 *
 * - `tag` is PG15's CreateCommandTag() for the raw statement, the tag event triggers and
 *   the server log use. It is the CommandComplete tag too, except that CREATE TABLE AS
 *   and SELECT INTO complete as "SELECT n" on the wire.
 * - Locks follow reference/rules-catalog.md appendix A (measured on PG15) and, where the
 *   appendix is silent, AlterTableGetLockLevel() and the command's own code in PG15. An
 *   ALTER TABLE takes the strongest lock of its sub-commands on its table; other tables
 *   it touches (the referenced table of a foreign key, an attached partition) are objects
 *   of their own. A sub-command's `lock` is the lock on the ALTER TABLE's own relation,
 *   and its `column` is whatever it names: a column, a constraint, a trigger (ENABLE
 *   TRIGGER), an index (CLUSTER ON), a partition (ATTACH/DETACH), a tablespace. RENAME
 *   and SET SCHEMA of a relation are listed as sub-commands too ("RENAME COLUMN"…).
 * - stmt_info.lock is the strongest lock on anything that existed before the statement:
 *   objects it creates are left out (nobody else can see them until commit, and rules
 *   treat new tables specially anyway), and relations the text cannot name are counted in
 *   (the indexes a REINDEX TABLE rebuilds under ACCESS EXCLUSIVE, every table a bare
 *   VACUUM FULL or CLUSTER takes, the tables using a domain in ALTER DOMAIN ADD CONSTRAINT).
 * - `ddl` means the statement changes the definition of something in the catalog: CREATE,
 *   ALTER, DROP, RENAME, COMMENT, GRANT/REVOKE, TRUNCATE, SELECT INTO… Maintenance commands
 *   (VACUUM, ANALYZE, CLUSTER, REINDEX, REFRESH MATERIALIZED VIEW), LOCK, DML, transaction
 *   control and SET are not DDL: their lock, rewrite and scan flags say what they cost.
 *   An unknown utility statement is DDL, to be safe.
 * - `opaque` means the statement runs code the text does not show: DO, CALL, EXECUTE, and
 *   a data statement (SELECT, INSERT … SELECT, a CTE, CREATE TABLE AS, DECLARE, EXPLAIN
 *   ANALYZE) with a function call in some SELECT target list or a function in FROM. A call
 *   in WHERE, VALUES or UPDATE … SET is not counted: that would make every `now()` opaque.
 *   Even so `SELECT count(*) FROM t` and `SELECT pg_advisory_lock(42)` (which migration
 *   tools send) are opaque: a policy that acts on opaque should allow-list what it trusts.
 *   stmt_fast_path() does not look for calls at all: a caller that needs `opaque` for
 *   SELECT must not skip analysis on its word.
 * - Relations read or written by DML are listed with kind "table": the text cannot tell a
 *   view from a table. CTE names are not relations and are left out.
 *
 * What the text alone cannot tell (needs the catalog, see the catalog's "live database
 * context" section), and how it is reported here:
 * - ALTER COLUMN TYPE always says rewrite=true: binary-coercible changes (varchar(50) to
 *   varchar(100), varchar to text) do not rewrite, but that needs the current type.
 * - ADD COLUMN says rewrite=true only for what the text shows: a DEFAULT that calls a
 *   known volatile function (volatile_functions below), serial types, IDENTITY, GENERATED
 *   … STORED. A volatile user function or a constrained domain type is not detected.
 * - The tables that DROP TABLE, DROP CONSTRAINT or VALIDATE CONSTRAINT lock through a
 *   foreign key, the table of DROP INDEX, partitions of a partitioned table, the DEFAULT
 *   partition of ATTACH PARTITION, and what CASCADE reaches are not listed.
 * - SET NOT NULL says scan=true even when a validated CHECK (col IS NOT NULL) lets PG12+
 *   skip the scan; ADD PRIMARY KEY USING INDEX says scan=false even when its columns are
 *   nullable.
 */
#include "policies/statement.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

/* ------------------------------------------------------------------ small helpers */

#define AX STMT_LOCK_ACCESS_EXCLUSIVE
#define SUX STMT_LOCK_SHARE_UPDATE_EXCLUSIVE
#define SRX STMT_LOCK_SHARE_ROW_EXCLUSIVE

static enum stmt_lock lock_max(enum stmt_lock a, enum stmt_lock b)
{
	return a > b ? a : b;
}

/* PostgreSQL's scanner whitespace (scan.l `space`). */
static bool is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* protobuf-c leaves unset proto3 strings as "" rather than NULL. */
static bool empty(const char *s)
{
	return s == NULL || s[0] == '\0';
}

/* The sval of a String node, or NULL. */
static const char *str_of(const PgQuery__Node *n)
{
	if (n && n->node_case == PG_QUERY__NODE__NODE_STRING && n->string)
		return n->string->sval;
	return NULL;
}

/* The last two String items of a dotted name (any_name, func_name, qualified_name). */
static void qualified_name(PgQuery__Node *const *items, size_t n, const char **schema,
			   const char **name)
{
	*schema = *name = NULL;
	if (n >= 1)
		*name = str_of(items[n - 1]);
	if (n >= 2)
		*schema = str_of(items[n - 2]);
}

/* The name of a node that names an object: String, List of String, RangeVar, TypeName,
 * ObjectWithArgs, RoleSpec. False when the node is none of those. */
static bool node_name(const PgQuery__Node *n, const char **schema, const char **name)
{
	*schema = *name = NULL;
	if (n == NULL)
		return false;
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_STRING:
		*name = n->string->sval;
		break;
	case PG_QUERY__NODE__NODE_LIST:
		qualified_name(n->list->items, n->list->n_items, schema, name);
		break;
	case PG_QUERY__NODE__NODE_RANGE_VAR:
		*schema = n->range_var->schemaname;
		*name = n->range_var->relname;
		break;
	case PG_QUERY__NODE__NODE_TYPE_NAME:
		qualified_name(n->type_name->names, n->type_name->n_names, schema, name);
		break;
	case PG_QUERY__NODE__NODE_OBJECT_WITH_ARGS:
		qualified_name(n->object_with_args->objname, n->object_with_args->n_objname,
			       schema, name);
		break;
	case PG_QUERY__NODE__NODE_ROLE_SPEC:
		*name = n->role_spec->rolename;
		break;
	default:
		return false;
	}
	return !empty(*name);
}

/* A DefElem option that is on: no argument (`VACUUM FULL`), or an argument that is not
 * false/off/0 (`VACUUM (FULL true)`). Mirrors defGetBoolean() for the spellings it takes. */
static bool defelem_on(const PgQuery__DefElem *d)
{
	const PgQuery__Node *arg = d->arg;
	if (arg == NULL)
		return true;
	switch (arg->node_case) {
	case PG_QUERY__NODE__NODE_INTEGER:
		return arg->integer->ival != 0;
	case PG_QUERY__NODE__NODE_BOOLEAN:
		return arg->boolean->boolval;
	case PG_QUERY__NODE__NODE_STRING: {
		const char *s = arg->string->sval;
		return !(strcasecmp(s, "false") == 0 || strcasecmp(s, "off") == 0 ||
			 strcasecmp(s, "0") == 0 || strcasecmp(s, "no") == 0);
	}
	default:
		return true;
	}
}

/* Whether an option list (VACUUM, REINDEX, EXPLAIN, …) has `name` switched on. */
static bool option_on(PgQuery__Node *const *opts, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		if (opts[i]->node_case != PG_QUERY__NODE__NODE_DEF_ELEM)
			continue;
		const PgQuery__DefElem *d = opts[i]->def_elem;
		if (strcmp(d->defname, name) == 0)
			return defelem_on(d);
	}
	return false;
}

static bool option_present(PgQuery__Node *const *opts, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (opts[i]->node_case == PG_QUERY__NODE__NODE_DEF_ELEM &&
		    strcmp(opts[i]->def_elem->defname, name) == 0)
			return true;
	return false;
}

/* ------------------------------------------------------------------ generic tree walk */

/* Called for every message of a tree, parents first; return false to skip its children. */
typedef bool (*visit_cb)(const ProtobufCMessage *m, void *ctx);

/*
 * Visit every message under m through the protobuf descriptors, so the walk needs no
 * knowledge of the 250-odd node types. A oneof member (PgQuery__Node's union) is followed
 * only when it is the set case: the other members share its storage.
 */
static void walk(const ProtobufCMessage *m, visit_cb visit, void *ctx)
{
	if (m == NULL || !visit(m, ctx))
		return;
	const ProtobufCMessageDescriptor *d = m->descriptor;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		const char *base = (const char *)m;
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)(base + f->quantifier_offset) != f->id)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			ProtobufCMessage *const *arr = *(ProtobufCMessage *const *const *)(base + f->offset);
			for (size_t j = 0; j < n; j++)
				walk(arr[j], visit, ctx);
		} else {
			walk(*(ProtobufCMessage *const *)(base + f->offset), visit, ctx);
		}
	}
}

/*
 * Zero every int32 field named "location" under m. Locations are byte offsets into the
 * text, so they differ between two spellings of the same statement (whitespace, comments,
 * a statement's place in a multi-statement text); the strict id must not see them.
 */
static void zero_locations(ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	char *base = (char *)m;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(uint32_t *)(base + f->quantifier_offset) != f->id)
			continue;
		if (f->type == PROTOBUF_C_TYPE_INT32 && f->label != PROTOBUF_C_LABEL_REPEATED &&
		    strcmp(f->name, "location") == 0) {
			*(int32_t *)(base + f->offset) = 0;
		} else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
			if (f->label == PROTOBUF_C_LABEL_REPEATED) {
				size_t n = *(size_t *)(base + f->quantifier_offset);
				ProtobufCMessage **arr = *(ProtobufCMessage ***)(base + f->offset);
				for (size_t j = 0; j < n; j++)
					if (arr[j])
						zero_locations(arr[j]);
			} else {
				ProtobufCMessage *sub = *(ProtobufCMessage **)(base + f->offset);
				if (sub)
					zero_locations(sub);
			}
		}
	}
}

static bool visit_find_funccall(const ProtobufCMessage *m, void *ctx)
{
	bool *found = ctx;
	if (m->descriptor == &pg_query__func_call__descriptor)
		*found = true;
	return !*found;
}

static bool has_funccall(const ProtobufCMessage *m)
{
	bool found = false;
	walk(m, visit_find_funccall, &found);
	return found;
}

/*
 * Functions that PostgreSQL marks volatile and that migrations put in column defaults.
 * A volatile default forces ADD COLUMN to rewrite the table; a stable one such as now()
 * or CURRENT_TIMESTAMP is evaluated once and stored in the catalog (PG11+). User
 * functions are not here: their volatility is in pg_proc, not in the text.
 */
static const char *const volatile_functions[] = {
	"random", "gen_random_uuid", "uuid_generate_v1", "uuid_generate_v1mc",
	"uuid_generate_v4", "clock_timestamp", "timeofday", "nextval",
};

static bool visit_find_volatile(const ProtobufCMessage *m, void *ctx)
{
	bool *found = ctx;
	if (m->descriptor == &pg_query__func_call__descriptor) {
		const PgQuery__FuncCall *fc = (const PgQuery__FuncCall *)m;
		const char *schema, *name;
		qualified_name(fc->funcname, fc->n_funcname, &schema, &name);
		for (size_t i = 0; name && i < sizeof volatile_functions / sizeof *volatile_functions; i++)
			if (strcmp(name, volatile_functions[i]) == 0)
				*found = true;
	}
	return !*found;
}

static bool has_volatile_call(const ProtobufCMessage *m)
{
	bool found = false;
	walk(m, visit_find_volatile, &found);
	return found;
}

/* ------------------------------------------------------------------ per-statement output */

/* One statement being analysed. */
struct an {
	struct stmt_info *st;
	int cap_objects, cap_subcmds;
	enum stmt_lock implicit;    /* taken on relations the text does not name */
	bool oom;
	/* data statements */
	enum stmt_lock read_lock;   /* ACCESS SHARE, or ROW SHARE under FOR UPDATE/SHARE */
	bool executes;              /* the data statement runs now (not a view's query) */
	const char **ctes;          /* CTE names (borrowed from the tree) */
	size_t nctes, cap_ctes;
};

static char *dup_or_null(struct an *a, const char *s)
{
	if (empty(s))
		return NULL;
	char *d = strdup(s);
	if (d == NULL)
		a->oom = true;
	return d;
}

static bool same(const char *x, const char *y)
{
	return (x == NULL && y == NULL) || (x && y && strcmp(x, y) == 0);
}

/*
 * Add an object, or merge into the one already listed under the same schema, name and
 * kind (a self-referencing foreign key, a table both read and written). Returns its index
 * (pointers into st->objects move when it grows), or -1 when there is no name or no memory.
 */
static int add_object(struct an *a, const char *schema, const char *name, const char *kind,
		      enum stmt_lock lock)
{
	struct stmt_info *st = a->st;
	if (empty(name) || a->oom)
		return -1;
	if (empty(schema))
		schema = NULL;
	for (int i = 0; i < st->nobjects; i++) {
		struct stmt_object *o = &st->objects[i];
		if (same(o->schema, schema) && strcmp(o->name, name) == 0 && strcmp(o->kind, kind) == 0) {
			o->lock = lock_max(o->lock, lock);
			return i;
		}
	}
	if (st->nobjects == a->cap_objects) {
		int cap = a->cap_objects ? a->cap_objects * 2 : 4;
		struct stmt_object *p = realloc(st->objects, (size_t)cap * sizeof *p);
		if (p == NULL) {
			a->oom = true;
			return -1;
		}
		st->objects = p;
		a->cap_objects = cap;
	}
	struct stmt_object *o = &st->objects[st->nobjects];
	memset(o, 0, sizeof *o);
	o->kind = kind;
	o->lock = lock;
	o->name = dup_or_null(a, name);
	o->schema = dup_or_null(a, schema);
	if (a->oom) {
		free(o->name);
		free(o->schema);
		return -1;
	}
	return st->nobjects++;
}

/* The object at index i, or NULL for -1. Valid until the next add_object(). */
static struct stmt_object *obj(struct an *a, int i)
{
	return i < 0 ? NULL : &a->st->objects[i];
}

static int add_rangevar(struct an *a, const PgQuery__RangeVar *rv, const char *kind,
			enum stmt_lock lock)
{
	if (rv == NULL)
		return -1;
	return add_object(a, rv->schemaname, rv->relname, kind, lock);
}

static int add_named(struct an *a, const PgQuery__Node *n, const char *kind, enum stmt_lock lock)
{
	const char *schema, *name;
	if (!node_name(n, &schema, &name))
		return -1;
	return add_object(a, schema, name, kind, lock);
}

static void mark_created(struct an *a, int i)
{
	if (i >= 0)
		a->st->objects[i].created = true;
}

static void mark_dropped(struct an *a, int i)
{
	if (i >= 0)
		a->st->objects[i].dropped = true;
}

/* Append an ALTER TABLE sub-command. The pointer is valid until the next add_subcmd(). */
static struct stmt_subcmd *add_subcmd(struct an *a, const char *name, const char *column,
				      enum stmt_lock lock)
{
	struct stmt_info *st = a->st;
	if (a->oom)
		return NULL;
	if (st->nsubcmds == a->cap_subcmds) {
		int cap = a->cap_subcmds ? a->cap_subcmds * 2 : 4;
		struct stmt_subcmd *p = realloc(st->subcmds, (size_t)cap * sizeof *p);
		if (p == NULL) {
			a->oom = true;
			return NULL;
		}
		st->subcmds = p;
		a->cap_subcmds = cap;
	}
	struct stmt_subcmd *sc = &st->subcmds[st->nsubcmds];
	memset(sc, 0, sizeof *sc);
	sc->name = name;
	sc->lock = lock;
	sc->column = dup_or_null(a, column);
	if (a->oom)
		return NULL;
	st->nsubcmds++;
	return sc;
}

/* ------------------------------------------------------------------ object types */

/* Kind, ALTER tag and DROP tag per ObjectType, after PG15's AlterObjectTypeCommandTag()
 * and CreateCommandTag(). NULL tags fall back to "???", as PostgreSQL itself does. */
struct objtype_info {
	const char *kind, *alter_tag, *drop_tag, *create_tag;
	bool relation;
};

static const struct objtype_info objtypes[] = {
	[PG_QUERY__OBJECT_TYPE__OBJECT_ACCESS_METHOD] = {"other", NULL, "DROP ACCESS METHOD", "CREATE ACCESS METHOD", false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_AGGREGATE] = {"function", "ALTER AGGREGATE", "DROP AGGREGATE", "CREATE AGGREGATE", false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_AMOP] = {"other", "ALTER OPERATOR FAMILY", NULL, NULL, false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_AMPROC] = {"other", "ALTER OPERATOR FAMILY", NULL, NULL, false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_ATTRIBUTE] = {"column", "ALTER TYPE", NULL, NULL, false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_CAST] = {"other", "ALTER CAST", "DROP CAST", "CREATE CAST", false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_COLUMN] = {"column", "ALTER TABLE", NULL, NULL, false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_COLLATION] = {"other", "ALTER COLLATION", "DROP COLLATION", "CREATE COLLATION", false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_CONVERSION] = {"other", "ALTER CONVERSION", "DROP CONVERSION", "CREATE CONVERSION", false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_DATABASE] = {"database", "ALTER DATABASE", "DROP DATABASE", "CREATE DATABASE", false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_DEFAULT] = {"other", NULL, NULL, NULL, false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_DEFACL] = {"other", NULL, NULL, NULL, false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_DOMAIN] = {"type", "ALTER DOMAIN", "DROP DOMAIN", "CREATE DOMAIN", false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_DOMCONSTRAINT] = {"constraint", "ALTER DOMAIN", NULL, NULL, false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_EVENT_TRIGGER] = {"trigger", "ALTER EVENT TRIGGER", "DROP EVENT TRIGGER", "CREATE EVENT TRIGGER", false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_EXTENSION] = {"extension", "ALTER EXTENSION", "DROP EXTENSION", "CREATE EXTENSION", false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_FDW] = {"other", "ALTER FOREIGN DATA WRAPPER", "DROP FOREIGN DATA WRAPPER", "CREATE FOREIGN DATA WRAPPER", false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_FOREIGN_SERVER] = {"other", "ALTER SERVER", "DROP SERVER", "CREATE SERVER", false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_FOREIGN_TABLE] = {"table", "ALTER FOREIGN TABLE", "DROP FOREIGN TABLE", "CREATE FOREIGN TABLE", true},
	[PG_QUERY__OBJECT_TYPE__OBJECT_FUNCTION] = {"function", "ALTER FUNCTION", "DROP FUNCTION", "CREATE FUNCTION", false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_INDEX] = {"index", "ALTER INDEX", "DROP INDEX", "CREATE INDEX", true},
	[PG_QUERY__OBJECT_TYPE__OBJECT_LANGUAGE] = {"other", "ALTER LANGUAGE", "DROP LANGUAGE", "CREATE LANGUAGE", false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_LARGEOBJECT] = {"other", "ALTER LARGE OBJECT", NULL, NULL, false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_MATVIEW] = {"materialized view", "ALTER MATERIALIZED VIEW", "DROP MATERIALIZED VIEW", "CREATE MATERIALIZED VIEW", true},
	[PG_QUERY__OBJECT_TYPE__OBJECT_OPCLASS] = {"other", "ALTER OPERATOR CLASS", "DROP OPERATOR CLASS", "CREATE OPERATOR CLASS", false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_OPERATOR] = {"other", "ALTER OPERATOR", "DROP OPERATOR", "CREATE OPERATOR", false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_OPFAMILY] = {"other", "ALTER OPERATOR FAMILY", "DROP OPERATOR FAMILY", "CREATE OPERATOR FAMILY", false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_PARAMETER_ACL] = {"other", NULL, NULL, NULL, false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_POLICY] = {"policy", "ALTER POLICY", "DROP POLICY", "CREATE POLICY", false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_PROCEDURE] = {"function", "ALTER PROCEDURE", "DROP PROCEDURE", "CREATE PROCEDURE", false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_PUBLICATION] = {"other", "ALTER PUBLICATION", "DROP PUBLICATION", "CREATE PUBLICATION", false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_PUBLICATION_NAMESPACE] = {"other", NULL, NULL, NULL, false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_PUBLICATION_REL] = {"other", NULL, NULL, NULL, false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_ROLE] = {"role", "ALTER ROLE", "DROP ROLE", "CREATE ROLE", false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_ROUTINE] = {"function", "ALTER ROUTINE", "DROP ROUTINE", NULL, false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_RULE] = {"other", "ALTER RULE", "DROP RULE", "CREATE RULE", false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_SCHEMA] = {"schema", "ALTER SCHEMA", "DROP SCHEMA", "CREATE SCHEMA", false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_SEQUENCE] = {"sequence", "ALTER SEQUENCE", "DROP SEQUENCE", "CREATE SEQUENCE", true},
	[PG_QUERY__OBJECT_TYPE__OBJECT_SUBSCRIPTION] = {"other", "ALTER SUBSCRIPTION", "DROP SUBSCRIPTION", "CREATE SUBSCRIPTION", false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_STATISTIC_EXT] = {"other", "ALTER STATISTICS", "DROP STATISTICS", "CREATE STATISTICS", false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_TABCONSTRAINT] = {"constraint", "ALTER TABLE", NULL, NULL, false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_TABLE] = {"table", "ALTER TABLE", "DROP TABLE", "CREATE TABLE", true},
	[PG_QUERY__OBJECT_TYPE__OBJECT_TABLESPACE] = {"other", "ALTER TABLESPACE", "DROP TABLESPACE", "CREATE TABLESPACE", false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_TRANSFORM] = {"other", NULL, "DROP TRANSFORM", "CREATE TRANSFORM", false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_TRIGGER] = {"trigger", "ALTER TRIGGER", "DROP TRIGGER", "CREATE TRIGGER", false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_TSCONFIGURATION] = {"other", "ALTER TEXT SEARCH CONFIGURATION", "DROP TEXT SEARCH CONFIGURATION", "CREATE TEXT SEARCH CONFIGURATION", false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_TSDICTIONARY] = {"other", "ALTER TEXT SEARCH DICTIONARY", "DROP TEXT SEARCH DICTIONARY", "CREATE TEXT SEARCH DICTIONARY", false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_TSPARSER] = {"other", "ALTER TEXT SEARCH PARSER", "DROP TEXT SEARCH PARSER", "CREATE TEXT SEARCH PARSER", false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_TSTEMPLATE] = {"other", "ALTER TEXT SEARCH TEMPLATE", "DROP TEXT SEARCH TEMPLATE", "CREATE TEXT SEARCH TEMPLATE", false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_TYPE] = {"type", "ALTER TYPE", "DROP TYPE", "CREATE TYPE", false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_USER_MAPPING] = {"other", "ALTER USER MAPPING", "DROP USER MAPPING", "CREATE USER MAPPING", false},
	[PG_QUERY__OBJECT_TYPE__OBJECT_VIEW] = {"view", "ALTER VIEW", "DROP VIEW", "CREATE VIEW", true},
};

static const struct objtype_info *objtype(PgQuery__ObjectType t)
{
	static const struct objtype_info unknown = {"other", NULL, NULL, NULL, false};
	if ((size_t)t < sizeof objtypes / sizeof *objtypes && objtypes[t].kind)
		return &objtypes[t];
	return &unknown;
}

static const char *tag_or_unknown(const char *tag)
{
	return tag ? tag : "???";
}

/* ------------------------------------------------------------------ data statements */

static bool is_cte(const struct an *a, const PgQuery__RangeVar *rv)
{
	if (!empty(rv->schemaname))
		return false;
	for (size_t i = 0; i < a->nctes; i++)
		if (strcmp(a->ctes[i], rv->relname) == 0)
			return true;
	return false;
}

/* First pass: CTE names (so `FROM cte` is not taken for a table) and FOR UPDATE/SHARE. */
static bool visit_data_prepass(const ProtobufCMessage *m, void *ctx)
{
	struct an *a = ctx;
	if (m->descriptor == &pg_query__common_table_expr__descriptor) {
		const char *name = ((const PgQuery__CommonTableExpr *)m)->ctename;
		if (empty(name))
			return true;
		if (a->nctes == a->cap_ctes) {
			size_t cap = a->cap_ctes ? a->cap_ctes * 2 : 8;
			const char **p = realloc(a->ctes, cap * sizeof *p);
			if (p == NULL) {
				a->oom = true;
				return false;
			}
			a->ctes = p;
			a->cap_ctes = cap;
		}
		a->ctes[a->nctes++] = name;
	} else if (m->descriptor == &pg_query__select_stmt__descriptor) {
		/* Row locks: the tables get ROW SHARE. Applied to every table of the
		 * statement, which may overstate a sub-select's lock but never understates. */
		if (((const PgQuery__SelectStmt *)m)->n_locking_clause > 0)
			a->read_lock = STMT_LOCK_ROW_SHARE;
	}
	return true;
}

static bool visit_data(const ProtobufCMessage *m, void *ctx)
{
	struct an *a = ctx;
	const ProtobufCMessageDescriptor *d = m->descriptor;

	if (d == &pg_query__range_var__descriptor) {
		const PgQuery__RangeVar *rv = (const PgQuery__RangeVar *)m;
		if (!is_cte(a, rv))
			add_rangevar(a, rv, "table", a->read_lock);
	} else if (d == &pg_query__insert_stmt__descriptor) {
		add_rangevar(a, ((const PgQuery__InsertStmt *)m)->relation, "table", STMT_LOCK_ROW_EXCLUSIVE);
	} else if (d == &pg_query__update_stmt__descriptor) {
		add_rangevar(a, ((const PgQuery__UpdateStmt *)m)->relation, "table", STMT_LOCK_ROW_EXCLUSIVE);
	} else if (d == &pg_query__delete_stmt__descriptor) {
		add_rangevar(a, ((const PgQuery__DeleteStmt *)m)->relation, "table", STMT_LOCK_ROW_EXCLUSIVE);
	} else if (d == &pg_query__merge_stmt__descriptor) {
		add_rangevar(a, ((const PgQuery__MergeStmt *)m)->relation, "table", STMT_LOCK_ROW_EXCLUSIVE);
	} else if (d == &pg_query__select_stmt__descriptor && a->executes) {
		const PgQuery__SelectStmt *s = (const PgQuery__SelectStmt *)m;
		for (size_t i = 0; i < s->n_target_list && !a->st->opaque; i++)
			if (has_funccall(&s->target_list[i]->base))
				a->st->opaque = true;
	} else if (d == &pg_query__range_function__descriptor && a->executes) {
		a->st->opaque = true;
	}
	return true;
}

/* Objects and opacity of a SELECT/INSERT/UPDATE/DELETE/MERGE tree (or a query inside
 * COPY, EXPLAIN, a view, …). `executes`: the query runs as part of this statement. */
static void analyze_data(struct an *a, const ProtobufCMessage *root, bool executes)
{
	a->read_lock = STMT_LOCK_ACCESS_SHARE;
	a->executes = executes;
	a->nctes = 0;
	walk(root, visit_data_prepass, a);
	walk(root, visit_data, a);
}

/* ------------------------------------------------------------------ CREATE TABLE */

/* Foreign keys of CREATE TABLE / ADD COLUMN: the referenced table is locked SHARE ROW
 * EXCLUSIVE (triggers are added to it). Returns whether c was a foreign key. */
static bool add_fk_target(struct an *a, const PgQuery__Constraint *c)
{
	if (c->contype != PG_QUERY__CONSTR_TYPE__CONSTR_FOREIGN)
		return false;
	add_rangevar(a, c->pktable, "table", SRX);
	return true;
}

static void analyze_create(struct an *a, const PgQuery__CreateStmt *s, const char *tag)
{
	struct stmt_info *st = a->st;
	st->tag = tag;
	st->ddl = true;
	st->if_not_exists = s->if_not_exists;
	mark_created(a, add_rangevar(a, s->relation, "table", AX));

	for (size_t i = 0; i < s->n_table_elts; i++) {
		const PgQuery__Node *e = s->table_elts[i];
		if (e->node_case == PG_QUERY__NODE__NODE_CONSTRAINT) {
			add_fk_target(a, e->constraint);
		} else if (e->node_case == PG_QUERY__NODE__NODE_COLUMN_DEF) {
			const PgQuery__ColumnDef *cd = e->column_def;
			for (size_t j = 0; j < cd->n_constraints; j++)
				if (cd->constraints[j]->node_case == PG_QUERY__NODE__NODE_CONSTRAINT)
					add_fk_target(a, cd->constraints[j]->constraint);
		} else if (e->node_case == PG_QUERY__NODE__NODE_TABLE_LIKE_CLAUSE) {
			add_rangevar(a, e->table_like_clause->relation, "table", STMT_LOCK_ACCESS_SHARE);
		}
	}
	for (size_t i = 0; i < s->n_constraints; i++)
		if (s->constraints[i]->node_case == PG_QUERY__NODE__NODE_CONSTRAINT)
			add_fk_target(a, s->constraints[i]->constraint);

	/* DefineRelation(): a new partition changes its parent's partition descriptor and
	 * takes ACCESS EXCLUSIVE on it; plain INHERITS takes SHARE UPDATE EXCLUSIVE. */
	for (size_t i = 0; i < s->n_inh_relations; i++)
		if (s->inh_relations[i]->node_case == PG_QUERY__NODE__NODE_RANGE_VAR)
			add_rangevar(a, s->inh_relations[i]->range_var, "table", s->partbound ? AX : SUX);
}

/* ------------------------------------------------------------------ ALTER TABLE */

/* Name and lock per AlterTableType, after PG15 AlterTableGetLockLevel() and appendix A.
 * Entries without a name are produced only internally by PostgreSQL, never by the parser. */
static const struct {
	const char *name;
	enum stmt_lock lock;
} at_types[] = {
	[PG_QUERY__ALTER_TABLE_TYPE__AT_AddColumn] = {"ADD COLUMN", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_AddColumnRecurse] = {"ADD COLUMN", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_AddColumnToView] = {"ADD COLUMN", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_ColumnDefault] = {"SET DEFAULT", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_CookedColumnDefault] = {"SET DEFAULT", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_DropNotNull] = {"DROP NOT NULL", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_SetNotNull] = {"SET NOT NULL", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_DropExpression] = {"DROP EXPRESSION", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_CheckNotNull] = {"SET NOT NULL", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_SetStatistics] = {"SET STATISTICS", SUX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_SetOptions] = {"SET COLUMN OPTIONS", SUX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_ResetOptions] = {"RESET COLUMN OPTIONS", SUX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_SetStorage] = {"SET STORAGE", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_SetCompression] = {"SET COMPRESSION", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_DropColumn] = {"DROP COLUMN", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_DropColumnRecurse] = {"DROP COLUMN", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_AddIndex] = {"ADD INDEX", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_AddConstraint] = {"ADD CONSTRAINT", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_AddConstraintRecurse] = {"ADD CONSTRAINT", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_AlterConstraint] = {"ALTER CONSTRAINT", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_ValidateConstraint] = {"VALIDATE CONSTRAINT", SUX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_ValidateConstraintRecurse] = {"VALIDATE CONSTRAINT", SUX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_AddIndexConstraint] = {"ADD CONSTRAINT USING INDEX", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_DropConstraint] = {"DROP CONSTRAINT", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_DropConstraintRecurse] = {"DROP CONSTRAINT", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_AlterColumnType] = {"ALTER COLUMN TYPE", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_AlterColumnGenericOptions] = {"ALTER COLUMN OPTIONS", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_ChangeOwner] = {"OWNER TO", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_ClusterOn] = {"CLUSTER ON", SUX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_DropCluster] = {"SET WITHOUT CLUSTER", SUX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_SetLogged] = {"SET LOGGED", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_SetUnLogged] = {"SET UNLOGGED", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_DropOids] = {"SET WITHOUT OIDS", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_SetAccessMethod] = {"SET ACCESS METHOD", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_SetTableSpace] = {"SET TABLESPACE", AX},
	/* Storage parameters (fillfactor, autovacuum_*, …): SHARE UPDATE EXCLUSIVE on
	 * tables. PG takes the strongest lock among the options named; for tables every
	 * common one is SUX (view options such as security_barrier take AX). */
	[PG_QUERY__ALTER_TABLE_TYPE__AT_SetRelOptions] = {"SET PARAMETERS", SUX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_ResetRelOptions] = {"RESET PARAMETERS", SUX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_ReplaceRelOptions] = {"SET PARAMETERS", SUX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_EnableTrig] = {"ENABLE TRIGGER", SRX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_EnableAlwaysTrig] = {"ENABLE ALWAYS TRIGGER", SRX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_EnableReplicaTrig] = {"ENABLE REPLICA TRIGGER", SRX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_DisableTrig] = {"DISABLE TRIGGER", SRX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_EnableTrigAll] = {"ENABLE TRIGGER ALL", SRX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_DisableTrigAll] = {"DISABLE TRIGGER ALL", SRX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_EnableTrigUser] = {"ENABLE TRIGGER USER", SRX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_DisableTrigUser] = {"DISABLE TRIGGER USER", SRX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_EnableRule] = {"ENABLE RULE", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_EnableAlwaysRule] = {"ENABLE ALWAYS RULE", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_EnableReplicaRule] = {"ENABLE REPLICA RULE", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_DisableRule] = {"DISABLE RULE", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_AddInherit] = {"INHERIT", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_DropInherit] = {"NO INHERIT", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_AddOf] = {"OF", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_DropOf] = {"NOT OF", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_ReplicaIdentity] = {"REPLICA IDENTITY", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_EnableRowSecurity] = {"ENABLE ROW LEVEL SECURITY", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_DisableRowSecurity] = {"DISABLE ROW LEVEL SECURITY", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_ForceRowSecurity] = {"FORCE ROW LEVEL SECURITY", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_NoForceRowSecurity] = {"NO FORCE ROW LEVEL SECURITY", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_GenericOptions] = {"OPTIONS", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_AttachPartition] = {"ATTACH PARTITION", SUX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_DetachPartition] = {"DETACH PARTITION", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_DetachPartitionFinalize] = {"DETACH PARTITION FINALIZE", SUX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_AddIdentity] = {"ADD IDENTITY", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_SetIdentity] = {"SET IDENTITY", AX},
	[PG_QUERY__ALTER_TABLE_TYPE__AT_DropIdentity] = {"DROP IDENTITY", AX},
};

/* serial and friends create a sequence and fill every existing row from it. */
static bool is_serial_type(const PgQuery__TypeName *tn)
{
	static const char *const serials[] = {
		"serial", "serial4", "bigserial", "serial8", "smallserial", "serial2",
	};
	if (tn == NULL || tn->n_names != 1)
		return false;
	const char *name = str_of(tn->names[0]);
	for (size_t i = 0; name && i < sizeof serials / sizeof *serials; i++)
		if (strcmp(name, serials[i]) == 0)
			return true;
	return false;
}

/* ADD COLUMN: a rewrite when every row needs a value computed per row; a scan when a
 * constraint on the new column must be checked or an index built. */
static void at_add_column(struct an *a, const PgQuery__ColumnDef *cd, bool *rewrite, bool *scan)
{
	if (is_serial_type(cd->type_name))
		*rewrite = true;
	for (size_t i = 0; i < cd->n_constraints; i++) {
		if (cd->constraints[i]->node_case != PG_QUERY__NODE__NODE_CONSTRAINT)
			continue;
		const PgQuery__Constraint *c = cd->constraints[i]->constraint;
		switch (c->contype) {
		case PG_QUERY__CONSTR_TYPE__CONSTR_DEFAULT:
			if (c->raw_expr && has_volatile_call(&c->raw_expr->base))
				*rewrite = true;
			break;
		case PG_QUERY__CONSTR_TYPE__CONSTR_IDENTITY:
		case PG_QUERY__CONSTR_TYPE__CONSTR_GENERATED:
			*rewrite = true;
			break;
		case PG_QUERY__CONSTR_TYPE__CONSTR_CHECK:
		case PG_QUERY__CONSTR_TYPE__CONSTR_PRIMARY:
		case PG_QUERY__CONSTR_TYPE__CONSTR_UNIQUE:
		case PG_QUERY__CONSTR_TYPE__CONSTR_EXCLUSION:
			*scan = true;
			break;
		case PG_QUERY__CONSTR_TYPE__CONSTR_FOREIGN:
			/* An inline REFERENCES cannot be NOT VALID: always validated. */
			add_fk_target(a, c);
			*scan = true;
			break;
		default:
			break;
		}
	}
}

/* ADD CONSTRAINT: name by constraint type, so a policy needs no tree to tell a CHECK from
 * a foreign key. Sets lock, scan and not_valid; adds the referenced table of a FK. */
static const char *at_add_constraint(struct an *a, const PgQuery__Constraint *c,
				     enum stmt_lock *lock, bool *scan, bool *not_valid)
{
	bool using_index = !empty(c->indexname);
	*not_valid = c->skip_validation;
	*lock = AX;
	switch (c->contype) {
	case PG_QUERY__CONSTR_TYPE__CONSTR_CHECK:
		*scan = !c->skip_validation;
		return "ADD CONSTRAINT CHECK";
	case PG_QUERY__CONSTR_TYPE__CONSTR_FOREIGN:
		/* Triggers go on both tables: SHARE ROW EXCLUSIVE on each (appendix A). */
		*lock = SRX;
		*scan = !c->skip_validation;
		add_fk_target(a, c);
		return "ADD CONSTRAINT FOREIGN KEY";
	case PG_QUERY__CONSTR_TYPE__CONSTR_UNIQUE:
		*scan = !using_index;
		return using_index ? "ADD CONSTRAINT UNIQUE USING INDEX" : "ADD CONSTRAINT UNIQUE";
	case PG_QUERY__CONSTR_TYPE__CONSTR_PRIMARY:
		*scan = !using_index;
		return using_index ? "ADD CONSTRAINT PRIMARY KEY USING INDEX" : "ADD CONSTRAINT PRIMARY KEY";
	case PG_QUERY__CONSTR_TYPE__CONSTR_EXCLUSION:
		*scan = true;
		return "ADD CONSTRAINT EXCLUDE";
	default:
		return "ADD CONSTRAINT";
	}
}

static void analyze_alter_table(struct an *a, const PgQuery__AlterTableStmt *s)
{
	struct stmt_info *st = a->st;
	const struct objtype_info *ot = objtype(s->objtype);
	st->tag = tag_or_unknown(ot->alter_tag);
	st->ddl = true;
	st->if_exists = s->missing_ok;
	int rel = add_rangevar(a, s->relation, ot->kind, STMT_LOCK_NONE);

	for (size_t i = 0; i < s->n_cmds; i++) {
		if (s->cmds[i]->node_case != PG_QUERY__NODE__NODE_ALTER_TABLE_CMD)
			continue;
		const PgQuery__AlterTableCmd *cmd = s->cmds[i]->alter_table_cmd;
		const PgQuery__Node *def = cmd->def;
		const char *name = NULL, *column = cmd->name;
		enum stmt_lock lock = AX;
		bool rewrite = false, scan = false, not_valid = false;

		if ((size_t)cmd->subtype < sizeof at_types / sizeof *at_types && at_types[cmd->subtype].name) {
			name = at_types[cmd->subtype].name;
			lock = at_types[cmd->subtype].lock;
		}

		switch (cmd->subtype) {
		case PG_QUERY__ALTER_TABLE_TYPE__AT_AddColumn:
		case PG_QUERY__ALTER_TABLE_TYPE__AT_AddColumnToView:
			if (def && def->node_case == PG_QUERY__NODE__NODE_COLUMN_DEF) {
				column = def->column_def->colname;
				at_add_column(a, def->column_def, &rewrite, &scan);
			}
			/* For ADD COLUMN, missing_ok is IF NOT EXISTS. */
			if (cmd->missing_ok)
				st->if_not_exists = true;
			break;
		case PG_QUERY__ALTER_TABLE_TYPE__AT_ColumnDefault:
			if (def == NULL)
				name = "DROP DEFAULT";
			break;
		case PG_QUERY__ALTER_TABLE_TYPE__AT_SetNotNull:
			scan = true;
			break;
		case PG_QUERY__ALTER_TABLE_TYPE__AT_AlterColumnType:
			/* Without the current type we cannot know the change is binary-coercible. */
			rewrite = true;
			break;
		case PG_QUERY__ALTER_TABLE_TYPE__AT_AddConstraint:
			if (def && def->node_case == PG_QUERY__NODE__NODE_CONSTRAINT) {
				column = def->constraint->conname;
				name = at_add_constraint(a, def->constraint, &lock, &scan, &not_valid);
			}
			break;
		case PG_QUERY__ALTER_TABLE_TYPE__AT_AlterConstraint:
			if (def && def->node_case == PG_QUERY__NODE__NODE_CONSTRAINT)
				column = def->constraint->conname;
			break;
		case PG_QUERY__ALTER_TABLE_TYPE__AT_ValidateConstraint:
			scan = true;
			break;
		case PG_QUERY__ALTER_TABLE_TYPE__AT_AddInherit:
		case PG_QUERY__ALTER_TABLE_TYPE__AT_DropInherit:
			/* The parent: SHARE UPDATE EXCLUSIVE to add a child (its relhassubclass
			 * changes), ACCESS SHARE to remove one (ATExecAddInherit/DropInherit). */
			if (def && def->node_case == PG_QUERY__NODE__NODE_RANGE_VAR)
				add_rangevar(a, def->range_var, "table",
					     cmd->subtype == PG_QUERY__ALTER_TABLE_TYPE__AT_AddInherit ? SUX
					     : STMT_LOCK_ACCESS_SHARE);
			break;
		case PG_QUERY__ALTER_TABLE_TYPE__AT_SetLogged:
		case PG_QUERY__ALTER_TABLE_TYPE__AT_SetUnLogged:
		case PG_QUERY__ALTER_TABLE_TYPE__AT_SetAccessMethod:
		case PG_QUERY__ALTER_TABLE_TYPE__AT_SetTableSpace:
			rewrite = true;
			break;
		case PG_QUERY__ALTER_TABLE_TYPE__AT_ChangeOwner:
			if (cmd->newowner)
				add_object(a, NULL, cmd->newowner->rolename, "role", STMT_LOCK_NONE);
			break;
		case PG_QUERY__ALTER_TABLE_TYPE__AT_AttachPartition:
			/* Parent: SUX (PG12+). The partition: AX, and a table is scanned against
			 * the bound (ALTER INDEX … ATTACH PARTITION only links two indexes). */
			if (def && def->node_case == PG_QUERY__NODE__NODE_PARTITION_CMD) {
				struct stmt_object *o = obj(a, add_rangevar(a, def->partition_cmd->name, ot->kind, AX));
				if (o && s->objtype != PG_QUERY__OBJECT_TYPE__OBJECT_INDEX)
					o->scan = true;
				column = def->partition_cmd->name ? def->partition_cmd->name->relname : NULL;
			}
			break;
		case PG_QUERY__ALTER_TABLE_TYPE__AT_DetachPartition:
		case PG_QUERY__ALTER_TABLE_TYPE__AT_DetachPartitionFinalize:
			/* CONCURRENTLY: SUX on the parent; the partition still gets AX in the
			 * second transaction. It cannot run inside a transaction block. */
			if (def && def->node_case == PG_QUERY__NODE__NODE_PARTITION_CMD) {
				add_rangevar(a, def->partition_cmd->name, ot->kind, AX);
				column = def->partition_cmd->name ? def->partition_cmd->name->relname : NULL;
				if (def->partition_cmd->concurrent) {
					lock = SUX;
					name = "DETACH PARTITION CONCURRENTLY";
					st->concurrently = true;
					st->in_tx_block_ok = false;
				}
			}
			break;
		default:
			break;
		}

		if (cmd->missing_ok && cmd->subtype != PG_QUERY__ALTER_TABLE_TYPE__AT_AddColumn)
			st->if_exists = true;
		if (cmd->behavior == PG_QUERY__DROP_BEHAVIOR__DROP_CASCADE)
			st->cascade = true;
		if (not_valid)
			st->not_valid = true;

		struct stmt_subcmd *sc = add_subcmd(a, name ? name : "???", column, lock);
		if (sc) {
			sc->rewrite = rewrite;
			sc->scan = scan;
			sc->not_valid = not_valid;
		}
		struct stmt_object *o = obj(a, rel);
		if (o) {
			o->lock = lock_max(o->lock, lock);
			o->rewrite |= rewrite;
			o->scan |= scan;
		}
	}
}

/* ------------------------------------------------------------------ RENAME, SET SCHEMA */

/* The relation of a RenameStmt/AlterObjectSchemaStmt gets `lock`, and the statement one
 * ALTER TABLE-style sub-command so RENAME COLUMN reads like the other ALTER TABLE forms. */
static void analyze_rename(struct an *a, const PgQuery__RenameStmt *s)
{
	struct stmt_info *st = a->st;
	PgQuery__ObjectType t = s->rename_type;
	st->ddl = true;
	st->if_exists = s->missing_ok;
	st->cascade = s->behavior == PG_QUERY__DROP_BEHAVIOR__DROP_CASCADE;
	/* PG15 CreateCommandTag(): a column rename is tagged by its relation's type. */
	st->tag = tag_or_unknown(objtype(t == PG_QUERY__OBJECT_TYPE__OBJECT_COLUMN ? s->relation_type : t)->alter_tag);

	switch (t) {
	case PG_QUERY__OBJECT_TYPE__OBJECT_TABLE:
	case PG_QUERY__OBJECT_TYPE__OBJECT_FOREIGN_TABLE:
	case PG_QUERY__OBJECT_TYPE__OBJECT_VIEW:
	case PG_QUERY__OBJECT_TYPE__OBJECT_MATVIEW:
	case PG_QUERY__OBJECT_TYPE__OBJECT_SEQUENCE:
	case PG_QUERY__OBJECT_TYPE__OBJECT_INDEX: {
		/* ALTER INDEX … RENAME takes only SHARE UPDATE EXCLUSIVE since PG12. */
		enum stmt_lock lock = t == PG_QUERY__OBJECT_TYPE__OBJECT_INDEX ? SUX : AX;
		add_rangevar(a, s->relation, objtype(t)->kind, lock);
		add_subcmd(a, "RENAME TO", NULL, lock);
		break;
	}
	case PG_QUERY__OBJECT_TYPE__OBJECT_COLUMN:
	case PG_QUERY__OBJECT_TYPE__OBJECT_ATTRIBUTE:
		add_rangevar(a, s->relation, t == PG_QUERY__OBJECT_TYPE__OBJECT_ATTRIBUTE ? "type"
			     : objtype(s->relation_type)->kind, AX);
		add_subcmd(a, t == PG_QUERY__OBJECT_TYPE__OBJECT_ATTRIBUTE ? "RENAME ATTRIBUTE"
			   : "RENAME COLUMN", s->subname, AX);
		break;
	case PG_QUERY__OBJECT_TYPE__OBJECT_TABCONSTRAINT:
		add_rangevar(a, s->relation, "table", AX);
		add_subcmd(a, "RENAME CONSTRAINT", s->subname, AX);
		break;
	case PG_QUERY__OBJECT_TYPE__OBJECT_TRIGGER:
	case PG_QUERY__OBJECT_TYPE__OBJECT_POLICY:
	case PG_QUERY__OBJECT_TYPE__OBJECT_RULE:
		add_rangevar(a, s->relation, "table", AX);
		add_object(a, NULL, s->subname, objtype(t)->kind, STMT_LOCK_NONE);
		break;
	case PG_QUERY__OBJECT_TYPE__OBJECT_SCHEMA:
	case PG_QUERY__OBJECT_TYPE__OBJECT_DATABASE:
	case PG_QUERY__OBJECT_TYPE__OBJECT_ROLE:
	case PG_QUERY__OBJECT_TYPE__OBJECT_TABLESPACE:
		add_object(a, NULL, s->subname, objtype(t)->kind, STMT_LOCK_NONE);
		break;
	default:
		add_named(a, s->object, objtype(t)->kind, STMT_LOCK_NONE);
		break;
	}
}

static void analyze_set_schema(struct an *a, const PgQuery__AlterObjectSchemaStmt *s)
{
	struct stmt_info *st = a->st;
	const struct objtype_info *ot = objtype(s->object_type);
	st->tag = tag_or_unknown(ot->alter_tag);
	st->ddl = true;
	st->if_exists = s->missing_ok;
	if (ot->relation) {
		add_rangevar(a, s->relation, ot->kind, AX);
		add_subcmd(a, "SET SCHEMA", NULL, AX);
	} else {
		add_named(a, s->object, ot->kind, STMT_LOCK_NONE);
	}
	add_object(a, NULL, s->newschema, "schema", STMT_LOCK_NONE);
}

/* ------------------------------------------------------------------ DROP, TRUNCATE, COMMENT */

static void analyze_drop(struct an *a, const PgQuery__DropStmt *s)
{
	struct stmt_info *st = a->st;
	PgQuery__ObjectType t = s->remove_type;
	const struct objtype_info *ot = objtype(t);
	st->tag = tag_or_unknown(ot->drop_tag);
	st->ddl = true;
	st->if_exists = s->missing_ok;
	st->cascade = s->behavior == PG_QUERY__DROP_BEHAVIOR__DROP_CASCADE;
	st->concurrently = s->concurrent;
	if (s->concurrent)
		st->in_tx_block_ok = false;

	for (size_t i = 0; i < s->n_objects; i++) {
		const PgQuery__Node *n = s->objects[i];
		if (ot->relation) {
			/* DROP INDEX CONCURRENTLY waits under SHARE UPDATE EXCLUSIVE; every
			 * other relation drop takes ACCESS EXCLUSIVE. */
			mark_dropped(a, add_named(a, n, ot->kind, s->concurrent ? SUX : AX));
		} else if ((t == PG_QUERY__OBJECT_TYPE__OBJECT_TRIGGER || t == PG_QUERY__OBJECT_TYPE__OBJECT_POLICY ||
			    t == PG_QUERY__OBJECT_TYPE__OBJECT_RULE) &&
			   n->node_case == PG_QUERY__NODE__NODE_LIST && n->list->n_items >= 2) {
			/* [schema,] table, name: the table is locked ACCESS EXCLUSIVE. */
			const char *schema, *table;
			qualified_name(n->list->items, n->list->n_items - 1, &schema, &table);
			add_object(a, schema, table, "table", AX);
			mark_dropped(a, add_object(a, NULL, str_of(n->list->items[n->list->n_items - 1]),
						   ot->kind, STMT_LOCK_NONE));
		} else {
			mark_dropped(a, add_named(a, n, ot->kind, STMT_LOCK_NONE));
		}
	}
}

static void analyze_truncate(struct an *a, const PgQuery__TruncateStmt *s)
{
	struct stmt_info *st = a->st;
	st->tag = "TRUNCATE TABLE";
	st->ddl = true;
	st->cascade = s->behavior == PG_QUERY__DROP_BEHAVIOR__DROP_CASCADE;
	for (size_t i = 0; i < s->n_relations; i++) {
		if (s->relations[i]->node_case != PG_QUERY__NODE__NODE_RANGE_VAR)
			continue;
		/* A new, empty relfilenode replaces the table's: a rewrite in appendix A. */
		struct stmt_object *o = obj(a, add_rangevar(a, s->relations[i]->range_var, "table", AX));
		if (o)
			o->rewrite = true;
	}
}

static void analyze_comment(struct an *a, const PgQuery__CommentStmt *s)
{
	struct stmt_info *st = a->st;
	PgQuery__ObjectType t = s->objtype;
	const struct objtype_info *ot = objtype(t);
	const PgQuery__Node *n = s->object;
	st->tag = "COMMENT";
	st->ddl = true;

	/* COMMENT locks a relation SHARE UPDATE EXCLUSIVE, also when the comment is on one
	 * of its columns, constraints, triggers, policies or rules ([schema,] table, name). */
	bool on_table_child = t == PG_QUERY__OBJECT_TYPE__OBJECT_COLUMN || t == PG_QUERY__OBJECT_TYPE__OBJECT_TABCONSTRAINT ||
			      t == PG_QUERY__OBJECT_TYPE__OBJECT_TRIGGER || t == PG_QUERY__OBJECT_TYPE__OBJECT_POLICY ||
			      t == PG_QUERY__OBJECT_TYPE__OBJECT_RULE;
	if (ot->relation) {
		add_named(a, n, ot->kind, SUX);
	} else if (on_table_child && n && n->node_case == PG_QUERY__NODE__NODE_LIST && n->list->n_items >= 2) {
		const char *schema, *table;
		qualified_name(n->list->items, n->list->n_items - 1, &schema, &table);
		add_object(a, schema, table, "table", SUX);
	} else {
		add_named(a, n, ot->kind, STMT_LOCK_NONE);
	}
}

/* ------------------------------------------------------------------ index, maintenance */

static void analyze_index(struct an *a, const PgQuery__IndexStmt *s)
{
	struct stmt_info *st = a->st;
	st->tag = "CREATE INDEX";
	st->ddl = true;
	st->concurrently = s->concurrent;
	st->if_not_exists = s->if_not_exists;
	st->in_tx_block_ok = !s->concurrent;
	/* The build reads the whole table: SHARE blocks writes for its duration,
	 * CONCURRENTLY waits under SHARE UPDATE EXCLUSIVE instead. */
	struct stmt_object *o = obj(a, add_rangevar(a, s->relation, "table", s->concurrent ? SUX : STMT_LOCK_SHARE));
	if (o)
		o->scan = true;
	/* The index lives in its table's schema; an unnamed index gets its name from the
	 * server, so it is not listed. */
	if (!empty(s->idxname))
		mark_created(a, add_object(a, s->relation ? s->relation->schemaname : NULL, s->idxname, "index", AX));
}

static void analyze_vacuum(struct an *a, const PgQuery__VacuumStmt *s)
{
	struct stmt_info *st = a->st;
	bool full = s->is_vacuumcmd && option_on(s->options, s->n_options, "full");
	enum stmt_lock lock = full ? AX : SUX;
	st->tag = s->is_vacuumcmd ? "VACUUM" : "ANALYZE";
	/* ANALYZE alone may run in a transaction block; VACUUM never. */
	st->in_tx_block_ok = !s->is_vacuumcmd;
	for (size_t i = 0; i < s->n_rels; i++) {
		if (s->rels[i]->node_case != PG_QUERY__NODE__NODE_VACUUM_RELATION)
			continue;
		struct stmt_object *o = obj(a, add_rangevar(a, s->rels[i]->vacuum_relation->relation, "table", lock));
		if (o)
			o->rewrite = full;
	}
	if (s->n_rels == 0)
		a->implicit = lock_max(a->implicit, lock);
}

static void analyze_reindex(struct an *a, const PgQuery__ReindexStmt *s)
{
	struct stmt_info *st = a->st;
	bool conc = option_on(s->params, s->n_params, "concurrently");
	struct stmt_object *o;
	st->tag = "REINDEX";
	st->concurrently = conc;
	st->in_tx_block_ok = !conc;

	switch (s->kind) {
	case PG_QUERY__REINDEX_OBJECT_TYPE__REINDEX_OBJECT_INDEX:
		/* The index: AX while rebuilt (SUX concurrently); its table: SHARE. */
		o = obj(a, add_rangevar(a, s->relation, "index", conc ? SUX : AX));
		if (o)
			o->rewrite = true;
		a->implicit = lock_max(a->implicit, conc ? SUX : STMT_LOCK_SHARE);
		break;
	case PG_QUERY__REINDEX_OBJECT_TYPE__REINDEX_OBJECT_TABLE:
		/* The table: SHARE and read; each of its indexes: AX, which blocks reads too
		 * (the planner locks every index), so the statement's lock is AX. */
		o = obj(a, add_rangevar(a, s->relation, "table", conc ? SUX : STMT_LOCK_SHARE));
		if (o)
			o->scan = true;
		a->implicit = lock_max(a->implicit, conc ? SUX : AX);
		break;
	default:
		/* SCHEMA, SYSTEM, DATABASE: every table in it, one transaction each. */
		add_object(a, NULL, s->name,
			   s->kind == PG_QUERY__REINDEX_OBJECT_TYPE__REINDEX_OBJECT_SCHEMA ? "schema" : "database",
			   STMT_LOCK_NONE);
		a->implicit = lock_max(a->implicit, conc ? SUX : AX);
		st->in_tx_block_ok = false;
		break;
	}
}

static void analyze_cluster(struct an *a, const PgQuery__ClusterStmt *s)
{
	struct stmt_info *st = a->st;
	st->tag = "CLUSTER";
	if (s->relation) {
		struct stmt_object *o = obj(a, add_rangevar(a, s->relation, "table", AX));
		if (o)
			o->rewrite = true;
	} else {
		/* Bare CLUSTER re-clusters every clustered table, each in its own transaction. */
		a->implicit = AX;
		st->in_tx_block_ok = false;
	}
}

static void analyze_refresh(struct an *a, const PgQuery__RefreshMatViewStmt *s)
{
	struct stmt_info *st = a->st;
	st->tag = "REFRESH MATERIALIZED VIEW";
	st->concurrently = s->concurrent;
	/* CONCURRENTLY diffs into the existing view under EXCLUSIVE (reads continue);
	 * otherwise the view is rebuilt into a new file under ACCESS EXCLUSIVE. */
	struct stmt_object *o = obj(a, add_rangevar(a, s->relation, "materialized view",
						     s->concurrent ? STMT_LOCK_EXCLUSIVE : AX));
	if (o)
		o->rewrite = !s->concurrent;
}

/* ------------------------------------------------------------------ other utility statements */

static void analyze_transaction(struct an *a, const PgQuery__TransactionStmt *s)
{
	static const struct {
		const char *tag;
		enum stmt_txctl txctl;
	} kinds[] = {
		[PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_BEGIN] = {"BEGIN", STMT_TX_BEGIN},
		[PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_START] = {"START TRANSACTION", STMT_TX_BEGIN},
		[PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT] = {"COMMIT", STMT_TX_COMMIT},
		[PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK] = {"ROLLBACK", STMT_TX_ROLLBACK},
		[PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_SAVEPOINT] = {"SAVEPOINT", STMT_TX_SAVEPOINT},
		[PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_RELEASE] = {"RELEASE", STMT_TX_RELEASE},
		[PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK_TO] = {"ROLLBACK", STMT_TX_ROLLBACK_TO},
		[PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_PREPARE] = {"PREPARE TRANSACTION", STMT_TX_PREPARE},
		[PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT_PREPARED] = {"COMMIT PREPARED", STMT_TX_COMMIT_PREPARED},
		[PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK_PREPARED] = {"ROLLBACK PREPARED", STMT_TX_ROLLBACK_PREPARED},
	};
	struct stmt_info *st = a->st;
	if ((size_t)s->kind < sizeof kinds / sizeof *kinds && kinds[s->kind].tag) {
		st->tag = kinds[s->kind].tag;
		st->txctl = kinds[s->kind].txctl;
	} else {
		st->tag = "???";
	}
	st->savepoint = dup_or_null(a, s->savepoint_name);
	/* COMMIT/ROLLBACK PREPARED refuse to run inside a transaction block. */
	if (st->txctl == STMT_TX_COMMIT_PREPARED || st->txctl == STMT_TX_ROLLBACK_PREPARED)
		st->in_tx_block_ok = false;
}

static void analyze_grant(struct an *a, const PgQuery__GrantStmt *s)
{
	struct stmt_info *st = a->st;
	const struct objtype_info *ot = objtype(s->objtype);
	st->tag = s->is_grant ? "GRANT" : "REVOKE";
	st->ddl = true;
	st->cascade = s->behavior == PG_QUERY__DROP_BEHAVIOR__DROP_CASCADE;
	/* GRANT resolves relations with NoLock: it only updates their catalog rows. */
	const char *kind = s->targtype == PG_QUERY__GRANT_TARGET_TYPE__ACL_TARGET_ALL_IN_SCHEMA ? "schema" : ot->kind;
	for (size_t i = 0; i < s->n_objects; i++)
		add_named(a, s->objects[i], kind, STMT_LOCK_NONE);
	for (size_t i = 0; i < s->n_grantees; i++)
		add_named(a, s->grantees[i], "role", STMT_LOCK_NONE);
}

static void analyze_grant_role(struct an *a, const PgQuery__GrantRoleStmt *s)
{
	struct stmt_info *st = a->st;
	st->tag = s->is_grant ? "GRANT ROLE" : "REVOKE ROLE";
	st->ddl = true;
	st->cascade = s->behavior == PG_QUERY__DROP_BEHAVIOR__DROP_CASCADE;
	for (size_t i = 0; i < s->n_granted_roles; i++)
		if (s->granted_roles[i]->node_case == PG_QUERY__NODE__NODE_ACCESS_PRIV)
			add_object(a, NULL, s->granted_roles[i]->access_priv->priv_name, "role", STMT_LOCK_NONE);
	for (size_t i = 0; i < s->n_grantee_roles; i++)
		add_named(a, s->grantee_roles[i], "role", STMT_LOCK_NONE);
}

static void analyze_alter_domain(struct an *a, const PgQuery__AlterDomainStmt *s)
{
	struct stmt_info *st = a->st;
	st->tag = "ALTER DOMAIN";
	st->ddl = true;
	st->if_exists = s->missing_ok;
	st->cascade = s->behavior == PG_QUERY__DROP_BEHAVIOR__DROP_CASCADE;
	const char *schema, *name;
	qualified_name(s->type_name, s->n_type_name, &schema, &name);
	add_object(a, schema, name, "type", STMT_LOCK_NONE);
	/* ADD CONSTRAINT ('C'), VALIDATE CONSTRAINT ('V') and SET NOT NULL ('O') check every
	 * column of this domain under SHARE on each table that uses it (appendix A); which
	 * tables those are is in the catalog only. */
	if (strcmp(s->subtype, "C") == 0 || strcmp(s->subtype, "V") == 0 || strcmp(s->subtype, "O") == 0)
		a->implicit = lock_max(a->implicit, STMT_LOCK_SHARE);
	if (strcmp(s->subtype, "C") == 0 && s->def && s->def->node_case == PG_QUERY__NODE__NODE_CONSTRAINT)
		st->not_valid = s->def->constraint->skip_validation;
}

/* CREATE TRIGGER, CREATE POLICY, CREATE RULE, CREATE STATISTICS, LOCK … */
static void analyze_create_trigger(struct an *a, const PgQuery__CreateTrigStmt *s)
{
	struct stmt_info *st = a->st;
	st->tag = "CREATE TRIGGER";
	st->ddl = true;
	add_rangevar(a, s->relation, "table", SRX);
	struct stmt_object *o = obj(a, add_object(a, NULL, s->trigname, "trigger", STMT_LOCK_NONE));
	if (o)
		o->created = !s->replace;
	const char *schema, *name;
	qualified_name(s->funcname, s->n_funcname, &schema, &name);
	add_object(a, schema, name, "function", STMT_LOCK_NONE);
}

static void analyze_lock(struct an *a, const PgQuery__LockStmt *s)
{
	a->st->tag = "LOCK TABLE";
	/* LockStmt.mode is PostgreSQL's LOCKMODE, numbered like enum stmt_lock. */
	enum stmt_lock lock = s->mode >= STMT_LOCK_ACCESS_SHARE && s->mode <= AX ? (enum stmt_lock)s->mode : AX;
	for (size_t i = 0; i < s->n_relations; i++)
		if (s->relations[i]->node_case == PG_QUERY__NODE__NODE_RANGE_VAR)
			add_rangevar(a, s->relations[i]->range_var, "table", lock);
}

static void analyze_explain(struct an *a, const PgQuery__ExplainStmt *s);
static void analyze_create_schema(struct an *a, const PgQuery__CreateSchemaStmt *s);

/* A named thing created by DefineStmt and the CREATE TYPE family. */
static void created_named(struct an *a, PgQuery__Node *const *names, size_t n, const char *kind)
{
	const char *schema, *name;
	qualified_name(names, n, &schema, &name);
	mark_created(a, add_object(a, schema, name, kind, STMT_LOCK_NONE));
}

/* ------------------------------------------------------------------ dispatch */

/* Set the tag and the ddl flag of a statement that needs nothing else. */
static void simple(struct an *a, const char *tag, bool ddl)
{
	a->st->tag = tag;
	a->st->ddl = ddl;
}

/* The PgQuery__Node type name ("AlterTableStmt"): the pg_query.proto name of the message
 * type of the oneof member that is set, from the generated descriptors (static storage).
 * Not the descriptor's short_name, which is the C spelling ("AConst" for A_Const). */
static const char *node_type_name(const PgQuery__Node *n)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field(&pg_query__node__descriptor, n->node_case);
	if (f == NULL || f->type != PROTOBUF_C_TYPE_MESSAGE)
		return "???";
	const ProtobufCMessageDescriptor *d = f->descriptor;
	size_t plen = strlen(d->package_name);
	if (plen && strncmp(d->name, d->package_name, plen) == 0 && d->name[plen] == '.')
		return d->name + plen + 1;
	return d->name;
}

static void analyze_node(struct an *a, const PgQuery__Node *n)
{
	struct stmt_info *st = a->st;
	st->node = node_type_name(n);

	switch (n->node_case) {
	/* ---- data */
	case PG_QUERY__NODE__NODE_SELECT_STMT: {
		const PgQuery__SelectStmt *s = n->select_stmt;
		st->tag = "SELECT";
		/* SELECT … INTO creates a table, like CREATE TABLE AS. */
		if (s->into_clause) {
			st->ddl = true;
			mark_created(a, add_rangevar(a, s->into_clause->rel, "table", AX));
		}
		analyze_data(a, &s->base, true);
		break;
	}
	case PG_QUERY__NODE__NODE_INSERT_STMT:
		st->tag = "INSERT";
		analyze_data(a, &n->insert_stmt->base, true);
		break;
	case PG_QUERY__NODE__NODE_UPDATE_STMT:
		st->tag = "UPDATE";
		analyze_data(a, &n->update_stmt->base, true);
		break;
	case PG_QUERY__NODE__NODE_DELETE_STMT:
		st->tag = "DELETE";
		analyze_data(a, &n->delete_stmt->base, true);
		break;
	case PG_QUERY__NODE__NODE_MERGE_STMT:
		st->tag = "MERGE";
		analyze_data(a, &n->merge_stmt->base, true);
		break;
	case PG_QUERY__NODE__NODE_COPY_STMT: {
		const PgQuery__CopyStmt *s = n->copy_stmt;
		st->tag = "COPY";
		add_rangevar(a, s->relation, "table", s->is_from ? STMT_LOCK_ROW_EXCLUSIVE : STMT_LOCK_ACCESS_SHARE);
		if (s->query)
			analyze_data(a, &s->query->base, true);
		break;
	}
	case PG_QUERY__NODE__NODE_EXPLAIN_STMT:
		analyze_explain(a, n->explain_stmt);
		break;
	case PG_QUERY__NODE__NODE_DECLARE_CURSOR_STMT:
		st->tag = "DECLARE CURSOR";
		if (n->declare_cursor_stmt->query)
			analyze_data(a, &n->declare_cursor_stmt->query->base, true);
		break;
	case PG_QUERY__NODE__NODE_PREPARE_STMT:
		/* The query runs at EXECUTE, which is opaque itself. */
		st->tag = "PREPARE";
		if (n->prepare_stmt->query)
			analyze_data(a, &n->prepare_stmt->query->base, false);
		break;
	case PG_QUERY__NODE__NODE_FETCH_STMT:
		st->tag = n->fetch_stmt->ismove ? "MOVE" : "FETCH";
		break;
	case PG_QUERY__NODE__NODE_CLOSE_PORTAL_STMT:
		st->tag = empty(n->close_portal_stmt->portalname) ? "CLOSE CURSOR ALL" : "CLOSE CURSOR";
		break;

	/* ---- code the text does not show */
	case PG_QUERY__NODE__NODE_DO_STMT:
		st->tag = "DO";
		st->opaque = true;
		break;
	case PG_QUERY__NODE__NODE_CALL_STMT: {
		st->tag = "CALL";
		st->opaque = true;
		const PgQuery__FuncCall *fc = n->call_stmt->funccall;
		if (fc) {
			const char *schema, *name;
			qualified_name(fc->funcname, fc->n_funcname, &schema, &name);
			add_object(a, schema, name, "function", STMT_LOCK_NONE);
		}
		break;
	}
	case PG_QUERY__NODE__NODE_EXECUTE_STMT:
		st->tag = "EXECUTE";
		st->opaque = true;
		break;

	/* ---- session */
	case PG_QUERY__NODE__NODE_TRANSACTION_STMT:
		analyze_transaction(a, n->transaction_stmt);
		break;
	case PG_QUERY__NODE__NODE_VARIABLE_SET_STMT: {
		PgQuery__VariableSetKind k = n->variable_set_stmt->kind;
		st->tag = k == PG_QUERY__VARIABLE_SET_KIND__VAR_RESET || k == PG_QUERY__VARIABLE_SET_KIND__VAR_RESET_ALL
			  ? "RESET" : "SET";
		break;
	}
	case PG_QUERY__NODE__NODE_VARIABLE_SHOW_STMT:
		st->tag = "SHOW";
		break;
	case PG_QUERY__NODE__NODE_DISCARD_STMT:
		switch (n->discard_stmt->target) {
		case PG_QUERY__DISCARD_MODE__DISCARD_ALL:
			st->tag = "DISCARD ALL";
			st->in_tx_block_ok = false;
			break;
		case PG_QUERY__DISCARD_MODE__DISCARD_PLANS:
			st->tag = "DISCARD PLANS";
			break;
		case PG_QUERY__DISCARD_MODE__DISCARD_SEQUENCES:
			st->tag = "DISCARD SEQUENCES";
			break;
		default:
			st->tag = "DISCARD TEMP";
			break;
		}
		break;
	case PG_QUERY__NODE__NODE_DEALLOCATE_STMT:
		st->tag = empty(n->deallocate_stmt->name) ? "DEALLOCATE ALL" : "DEALLOCATE";
		break;
	case PG_QUERY__NODE__NODE_LISTEN_STMT: simple(a, "LISTEN", false); break;
	case PG_QUERY__NODE__NODE_UNLISTEN_STMT: simple(a, "UNLISTEN", false); break;
	case PG_QUERY__NODE__NODE_NOTIFY_STMT: simple(a, "NOTIFY", false); break;
	case PG_QUERY__NODE__NODE_LOAD_STMT: simple(a, "LOAD", false); break;
	case PG_QUERY__NODE__NODE_CHECK_POINT_STMT: simple(a, "CHECKPOINT", false); break;
	case PG_QUERY__NODE__NODE_CONSTRAINTS_SET_STMT: simple(a, "SET CONSTRAINTS", false); break;
	case PG_QUERY__NODE__NODE_LOCK_STMT:
		analyze_lock(a, n->lock_stmt);
		break;

	/* ---- maintenance */
	case PG_QUERY__NODE__NODE_VACUUM_STMT:
		analyze_vacuum(a, n->vacuum_stmt);
		break;
	case PG_QUERY__NODE__NODE_CLUSTER_STMT:
		analyze_cluster(a, n->cluster_stmt);
		break;
	case PG_QUERY__NODE__NODE_REINDEX_STMT:
		analyze_reindex(a, n->reindex_stmt);
		break;
	case PG_QUERY__NODE__NODE_REFRESH_MAT_VIEW_STMT:
		analyze_refresh(a, n->refresh_mat_view_stmt);
		break;

	/* ---- relations */
	case PG_QUERY__NODE__NODE_CREATE_STMT:
		analyze_create(a, n->create_stmt, "CREATE TABLE");
		break;
	case PG_QUERY__NODE__NODE_CREATE_FOREIGN_TABLE_STMT:
		if (n->create_foreign_table_stmt->base_stmt)
			analyze_create(a, n->create_foreign_table_stmt->base_stmt, "CREATE FOREIGN TABLE");
		else
			simple(a, "CREATE FOREIGN TABLE", true);
		break;
	case PG_QUERY__NODE__NODE_CREATE_TABLE_AS_STMT: {
		const PgQuery__CreateTableAsStmt *s = n->create_table_as_stmt;
		bool matview = s->objtype == PG_QUERY__OBJECT_TYPE__OBJECT_MATVIEW;
		st->tag = matview ? "CREATE MATERIALIZED VIEW" : s->is_select_into ? "SELECT" : "CREATE TABLE AS";
		st->ddl = true;
		st->if_not_exists = s->if_not_exists;
		if (s->into)
			mark_created(a, add_rangevar(a, s->into->rel, matview ? "materialized view" : "table", AX));
		if (s->query)
			analyze_data(a, &s->query->base, !(s->into && s->into->skip_data));
		break;
	}
	case PG_QUERY__NODE__NODE_VIEW_STMT: {
		const PgQuery__ViewStmt *s = n->view_stmt;
		st->tag = "CREATE VIEW";
		st->ddl = true;
		/* OR REPLACE may replace a view in use: ACCESS EXCLUSIVE on it, and it is not
		 * known to be new. */
		struct stmt_object *o = obj(a, add_rangevar(a, s->view, "view", AX));
		if (o)
			o->created = !s->replace;
		if (s->query)
			analyze_data(a, &s->query->base, false);
		break;
	}
	case PG_QUERY__NODE__NODE_CREATE_SEQ_STMT:
		st->tag = "CREATE SEQUENCE";
		st->ddl = true;
		st->if_not_exists = n->create_seq_stmt->if_not_exists;
		mark_created(a, add_rangevar(a, n->create_seq_stmt->sequence, "sequence", AX));
		break;
	case PG_QUERY__NODE__NODE_ALTER_SEQ_STMT:
		st->tag = "ALTER SEQUENCE";
		st->ddl = true;
		st->if_exists = n->alter_seq_stmt->missing_ok;
		add_rangevar(a, n->alter_seq_stmt->sequence, "sequence", SRX);
		break;
	case PG_QUERY__NODE__NODE_INDEX_STMT:
		analyze_index(a, n->index_stmt);
		break;
	case PG_QUERY__NODE__NODE_ALTER_TABLE_STMT:
		analyze_alter_table(a, n->alter_table_stmt);
		break;
	case PG_QUERY__NODE__NODE_ALTER_TABLE_MOVE_ALL_STMT:
		/* ALTER TABLE ALL IN TABLESPACE … SET TABLESPACE: copies every table it finds. */
		st->tag = tag_or_unknown(objtype(n->alter_table_move_all_stmt->objtype)->alter_tag);
		st->ddl = true;
		a->implicit = AX;
		break;
	case PG_QUERY__NODE__NODE_RENAME_STMT:
		analyze_rename(a, n->rename_stmt);
		break;
	case PG_QUERY__NODE__NODE_ALTER_OBJECT_SCHEMA_STMT:
		analyze_set_schema(a, n->alter_object_schema_stmt);
		break;
	case PG_QUERY__NODE__NODE_ALTER_OWNER_STMT: {
		const PgQuery__AlterOwnerStmt *s = n->alter_owner_stmt;
		const struct objtype_info *ot = objtype(s->object_type);
		st->tag = tag_or_unknown(ot->alter_tag);
		st->ddl = true;
		add_named(a, s->object, ot->kind, STMT_LOCK_NONE);
		if (s->newowner)
			add_object(a, NULL, s->newowner->rolename, "role", STMT_LOCK_NONE);
		break;
	}
	case PG_QUERY__NODE__NODE_DROP_STMT:
		analyze_drop(a, n->drop_stmt);
		break;
	case PG_QUERY__NODE__NODE_TRUNCATE_STMT:
		analyze_truncate(a, n->truncate_stmt);
		break;
	case PG_QUERY__NODE__NODE_COMMENT_STMT:
		analyze_comment(a, n->comment_stmt);
		break;
	case PG_QUERY__NODE__NODE_CREATE_TRIG_STMT:
		analyze_create_trigger(a, n->create_trig_stmt);
		break;
	case PG_QUERY__NODE__NODE_CREATE_POLICY_STMT:
		st->tag = "CREATE POLICY";
		st->ddl = true;
		add_rangevar(a, n->create_policy_stmt->table, "table", AX);
		mark_created(a, add_object(a, NULL, n->create_policy_stmt->policy_name, "policy", STMT_LOCK_NONE));
		break;
	case PG_QUERY__NODE__NODE_ALTER_POLICY_STMT:
		st->tag = "ALTER POLICY";
		st->ddl = true;
		add_rangevar(a, n->alter_policy_stmt->table, "table", AX);
		add_object(a, NULL, n->alter_policy_stmt->policy_name, "policy", STMT_LOCK_NONE);
		break;
	case PG_QUERY__NODE__NODE_RULE_STMT:
		st->tag = "CREATE RULE";
		st->ddl = true;
		add_rangevar(a, n->rule_stmt->relation, "table", AX);
		mark_created(a, add_object(a, NULL, n->rule_stmt->rulename, "other", STMT_LOCK_NONE));
		break;
	case PG_QUERY__NODE__NODE_CREATE_STATS_STMT: {
		const PgQuery__CreateStatsStmt *s = n->create_stats_stmt;
		st->tag = "CREATE STATISTICS";
		st->ddl = true;
		st->if_not_exists = s->if_not_exists;
		for (size_t i = 0; i < s->n_relations; i++)
			if (s->relations[i]->node_case == PG_QUERY__NODE__NODE_RANGE_VAR)
				add_rangevar(a, s->relations[i]->range_var, "table", SUX);
		created_named(a, s->defnames, s->n_defnames, "other");
		break;
	}
	case PG_QUERY__NODE__NODE_ALTER_STATS_STMT: simple(a, "ALTER STATISTICS", true); break;

	/* ---- types, functions, schemas, extensions */
	case PG_QUERY__NODE__NODE_CREATE_FUNCTION_STMT: {
		const PgQuery__CreateFunctionStmt *s = n->create_function_stmt;
		const char *schema, *name;
		st->tag = s->is_procedure ? "CREATE PROCEDURE" : "CREATE FUNCTION";
		st->ddl = true;
		qualified_name(s->funcname, s->n_funcname, &schema, &name);
		struct stmt_object *o = obj(a, add_object(a, schema, name, "function", STMT_LOCK_NONE));
		if (o)
			o->created = !s->replace;
		break;
	}
	case PG_QUERY__NODE__NODE_ALTER_FUNCTION_STMT: {
		const PgQuery__AlterFunctionStmt *s = n->alter_function_stmt;
		st->tag = tag_or_unknown(objtype(s->objtype)->alter_tag);
		st->ddl = true;
		if (s->func) {
			const char *schema, *name;
			qualified_name(s->func->objname, s->func->n_objname, &schema, &name);
			add_object(a, schema, name, "function", STMT_LOCK_NONE);
		}
		break;
	}
	case PG_QUERY__NODE__NODE_DEFINE_STMT: {
		const PgQuery__DefineStmt *s = n->define_stmt;
		const struct objtype_info *ot = objtype(s->kind);
		st->tag = tag_or_unknown(ot->create_tag);
		st->ddl = true;
		st->if_not_exists = s->if_not_exists;
		created_named(a, s->defnames, s->n_defnames, ot->kind);
		break;
	}
	case PG_QUERY__NODE__NODE_COMPOSITE_TYPE_STMT:
		st->tag = "CREATE TYPE";
		st->ddl = true;
		if (n->composite_type_stmt->typevar)
			mark_created(a, add_rangevar(a, n->composite_type_stmt->typevar, "type", STMT_LOCK_NONE));
		break;
	case PG_QUERY__NODE__NODE_CREATE_ENUM_STMT:
		st->tag = "CREATE TYPE";
		st->ddl = true;
		created_named(a, n->create_enum_stmt->type_name, n->create_enum_stmt->n_type_name, "type");
		break;
	case PG_QUERY__NODE__NODE_CREATE_RANGE_STMT:
		st->tag = "CREATE TYPE";
		st->ddl = true;
		created_named(a, n->create_range_stmt->type_name, n->create_range_stmt->n_type_name, "type");
		break;
	case PG_QUERY__NODE__NODE_CREATE_DOMAIN_STMT:
		st->tag = "CREATE DOMAIN";
		st->ddl = true;
		created_named(a, n->create_domain_stmt->domainname, n->create_domain_stmt->n_domainname, "type");
		break;
	case PG_QUERY__NODE__NODE_ALTER_ENUM_STMT: {
		const PgQuery__AlterEnumStmt *s = n->alter_enum_stmt;
		const char *schema, *name;
		/* ADD VALUE runs in a transaction block since PG12 (the value is unusable
		 * until commit, which rules may care about; in_tx_block_ok stays true). */
		st->tag = "ALTER TYPE";
		st->ddl = true;
		st->if_not_exists = s->skip_if_new_val_exists;
		qualified_name(s->type_name, s->n_type_name, &schema, &name);
		add_object(a, schema, name, "type", STMT_LOCK_NONE);
		break;
	}
	case PG_QUERY__NODE__NODE_ALTER_TYPE_STMT: {
		const char *schema, *name;
		st->tag = "ALTER TYPE";
		st->ddl = true;
		qualified_name(n->alter_type_stmt->type_name, n->alter_type_stmt->n_type_name, &schema, &name);
		add_object(a, schema, name, "type", STMT_LOCK_NONE);
		break;
	}
	case PG_QUERY__NODE__NODE_ALTER_DOMAIN_STMT:
		analyze_alter_domain(a, n->alter_domain_stmt);
		break;
	case PG_QUERY__NODE__NODE_CREATE_SCHEMA_STMT:
		analyze_create_schema(a, n->create_schema_stmt);
		break;
	case PG_QUERY__NODE__NODE_CREATE_EXTENSION_STMT:
		st->tag = "CREATE EXTENSION";
		st->ddl = true;
		st->if_not_exists = n->create_extension_stmt->if_not_exists;
		mark_created(a, add_object(a, NULL, n->create_extension_stmt->extname, "extension", STMT_LOCK_NONE));
		break;
	case PG_QUERY__NODE__NODE_ALTER_EXTENSION_STMT:
		st->tag = "ALTER EXTENSION";
		st->ddl = true;
		add_object(a, NULL, n->alter_extension_stmt->extname, "extension", STMT_LOCK_NONE);
		break;
	case PG_QUERY__NODE__NODE_ALTER_EXTENSION_CONTENTS_STMT:
		st->tag = "ALTER EXTENSION";
		st->ddl = true;
		add_object(a, NULL, n->alter_extension_contents_stmt->extname, "extension", STMT_LOCK_NONE);
		break;

	/* ---- roles, privileges, databases, cluster-wide */
	case PG_QUERY__NODE__NODE_GRANT_STMT:
		analyze_grant(a, n->grant_stmt);
		break;
	case PG_QUERY__NODE__NODE_GRANT_ROLE_STMT:
		analyze_grant_role(a, n->grant_role_stmt);
		break;
	case PG_QUERY__NODE__NODE_ALTER_DEFAULT_PRIVILEGES_STMT: simple(a, "ALTER DEFAULT PRIVILEGES", true); break;
	case PG_QUERY__NODE__NODE_CREATE_ROLE_STMT:
		st->tag = "CREATE ROLE";
		st->ddl = true;
		mark_created(a, add_object(a, NULL, n->create_role_stmt->role, "role", STMT_LOCK_NONE));
		break;
	case PG_QUERY__NODE__NODE_ALTER_ROLE_STMT:
		st->tag = "ALTER ROLE";
		st->ddl = true;
		if (n->alter_role_stmt->role)
			add_object(a, NULL, n->alter_role_stmt->role->rolename, "role", STMT_LOCK_NONE);
		break;
	case PG_QUERY__NODE__NODE_ALTER_ROLE_SET_STMT:
		st->tag = "ALTER ROLE";
		st->ddl = true;
		if (n->alter_role_set_stmt->role)
			add_object(a, NULL, n->alter_role_set_stmt->role->rolename, "role", STMT_LOCK_NONE);
		break;
	case PG_QUERY__NODE__NODE_DROP_ROLE_STMT:
		st->tag = "DROP ROLE";
		st->ddl = true;
		st->if_exists = n->drop_role_stmt->missing_ok;
		for (size_t i = 0; i < n->drop_role_stmt->n_roles; i++)
			mark_dropped(a, add_named(a, n->drop_role_stmt->roles[i], "role", STMT_LOCK_NONE));
		break;
	case PG_QUERY__NODE__NODE_DROP_OWNED_STMT:
		st->tag = "DROP OWNED";
		st->ddl = true;
		st->cascade = n->drop_owned_stmt->behavior == PG_QUERY__DROP_BEHAVIOR__DROP_CASCADE;
		for (size_t i = 0; i < n->drop_owned_stmt->n_roles; i++)
			add_named(a, n->drop_owned_stmt->roles[i], "role", STMT_LOCK_NONE);
		break;
	case PG_QUERY__NODE__NODE_REASSIGN_OWNED_STMT:
		st->tag = "REASSIGN OWNED";
		st->ddl = true;
		for (size_t i = 0; i < n->reassign_owned_stmt->n_roles; i++)
			add_named(a, n->reassign_owned_stmt->roles[i], "role", STMT_LOCK_NONE);
		break;
	case PG_QUERY__NODE__NODE_CREATEDB_STMT:
		st->tag = "CREATE DATABASE";
		st->ddl = true;
		st->in_tx_block_ok = false;
		mark_created(a, add_object(a, NULL, n->createdb_stmt->dbname, "database", STMT_LOCK_NONE));
		break;
	case PG_QUERY__NODE__NODE_DROPDB_STMT:
		st->tag = "DROP DATABASE";
		st->ddl = true;
		st->in_tx_block_ok = false;
		st->if_exists = n->dropdb_stmt->missing_ok;
		mark_dropped(a, add_object(a, NULL, n->dropdb_stmt->dbname, "database", STMT_LOCK_NONE));
		break;
	case PG_QUERY__NODE__NODE_ALTER_DATABASE_STMT: {
		const PgQuery__AlterDatabaseStmt *s = n->alter_database_stmt;
		st->tag = "ALTER DATABASE";
		st->ddl = true;
		/* SET TABLESPACE moves the database's files: not in a transaction block. */
		if (option_present(s->options, s->n_options, "tablespace"))
			st->in_tx_block_ok = false;
		add_object(a, NULL, s->dbname, "database", STMT_LOCK_NONE);
		break;
	}
	case PG_QUERY__NODE__NODE_ALTER_DATABASE_SET_STMT:
		st->tag = "ALTER DATABASE";
		st->ddl = true;
		add_object(a, NULL, n->alter_database_set_stmt->dbname, "database", STMT_LOCK_NONE);
		break;
	case PG_QUERY__NODE__NODE_ALTER_DATABASE_REFRESH_COLL_STMT:
		st->tag = "ALTER DATABASE";
		st->ddl = true;
		add_object(a, NULL, n->alter_database_refresh_coll_stmt->dbname, "database", STMT_LOCK_NONE);
		break;
	case PG_QUERY__NODE__NODE_CREATE_TABLE_SPACE_STMT:
		st->tag = "CREATE TABLESPACE";
		st->ddl = true;
		st->in_tx_block_ok = false;
		mark_created(a, add_object(a, NULL, n->create_table_space_stmt->tablespacename, "other", STMT_LOCK_NONE));
		break;
	case PG_QUERY__NODE__NODE_DROP_TABLE_SPACE_STMT:
		st->tag = "DROP TABLESPACE";
		st->ddl = true;
		st->in_tx_block_ok = false;
		st->if_exists = n->drop_table_space_stmt->missing_ok;
		mark_dropped(a, add_object(a, NULL, n->drop_table_space_stmt->tablespacename, "other", STMT_LOCK_NONE));
		break;
	case PG_QUERY__NODE__NODE_ALTER_TABLE_SPACE_OPTIONS_STMT: simple(a, "ALTER TABLESPACE", true); break;
	case PG_QUERY__NODE__NODE_ALTER_SYSTEM_STMT:
		st->tag = "ALTER SYSTEM";
		st->ddl = true;
		st->in_tx_block_ok = false;
		break;
	case PG_QUERY__NODE__NODE_CREATE_SUBSCRIPTION_STMT: {
		const PgQuery__CreateSubscriptionStmt *s = n->create_subscription_stmt;
		st->tag = "CREATE SUBSCRIPTION";
		st->ddl = true;
		/* Creating the remote slot (the default) cannot be rolled back. */
		st->in_tx_block_ok = option_present(s->options, s->n_options, "create_slot") &&
				     !option_on(s->options, s->n_options, "create_slot");
		break;
	}
	case PG_QUERY__NODE__NODE_DROP_SUBSCRIPTION_STMT:
		/* Dropping its remote slot cannot be rolled back; whether it has one is in
		 * the catalog, so assume it does. */
		st->tag = "DROP SUBSCRIPTION";
		st->ddl = true;
		st->in_tx_block_ok = false;
		st->if_exists = n->drop_subscription_stmt->missing_ok;
		break;
	case PG_QUERY__NODE__NODE_ALTER_SUBSCRIPTION_STMT: simple(a, "ALTER SUBSCRIPTION", true); break;
	case PG_QUERY__NODE__NODE_CREATE_PUBLICATION_STMT: simple(a, "CREATE PUBLICATION", true); break;
	case PG_QUERY__NODE__NODE_ALTER_PUBLICATION_STMT: simple(a, "ALTER PUBLICATION", true); break;

	/* ---- the rest of the catalog: tag only */
	case PG_QUERY__NODE__NODE_ALTER_OBJECT_DEPENDS_STMT:
		simple(a, tag_or_unknown(objtype(n->alter_object_depends_stmt->object_type)->alter_tag), true);
		break;
	case PG_QUERY__NODE__NODE_CREATE_EVENT_TRIG_STMT:
		simple(a, "CREATE EVENT TRIGGER", true);
		mark_created(a, add_object(a, NULL, n->create_event_trig_stmt->trigname, "trigger", STMT_LOCK_NONE));
		break;
	case PG_QUERY__NODE__NODE_ALTER_EVENT_TRIG_STMT: simple(a, "ALTER EVENT TRIGGER", true); break;
	case PG_QUERY__NODE__NODE_SEC_LABEL_STMT: simple(a, "SECURITY LABEL", true); break;
	case PG_QUERY__NODE__NODE_CREATE_PLANG_STMT: simple(a, "CREATE LANGUAGE", true); break;
	case PG_QUERY__NODE__NODE_CREATE_CONVERSION_STMT: simple(a, "CREATE CONVERSION", true); break;
	case PG_QUERY__NODE__NODE_CREATE_CAST_STMT: simple(a, "CREATE CAST", true); break;
	case PG_QUERY__NODE__NODE_CREATE_OP_CLASS_STMT: simple(a, "CREATE OPERATOR CLASS", true); break;
	case PG_QUERY__NODE__NODE_CREATE_OP_FAMILY_STMT: simple(a, "CREATE OPERATOR FAMILY", true); break;
	case PG_QUERY__NODE__NODE_ALTER_OP_FAMILY_STMT: simple(a, "ALTER OPERATOR FAMILY", true); break;
	case PG_QUERY__NODE__NODE_ALTER_OPERATOR_STMT: simple(a, "ALTER OPERATOR", true); break;
	case PG_QUERY__NODE__NODE_ALTER_TSDICTIONARY_STMT: simple(a, "ALTER TEXT SEARCH DICTIONARY", true); break;
	case PG_QUERY__NODE__NODE_ALTER_TSCONFIGURATION_STMT: simple(a, "ALTER TEXT SEARCH CONFIGURATION", true); break;
	case PG_QUERY__NODE__NODE_CREATE_FDW_STMT: simple(a, "CREATE FOREIGN DATA WRAPPER", true); break;
	case PG_QUERY__NODE__NODE_ALTER_FDW_STMT: simple(a, "ALTER FOREIGN DATA WRAPPER", true); break;
	case PG_QUERY__NODE__NODE_CREATE_FOREIGN_SERVER_STMT: simple(a, "CREATE SERVER", true); break;
	case PG_QUERY__NODE__NODE_ALTER_FOREIGN_SERVER_STMT: simple(a, "ALTER SERVER", true); break;
	case PG_QUERY__NODE__NODE_CREATE_USER_MAPPING_STMT: simple(a, "CREATE USER MAPPING", true); break;
	case PG_QUERY__NODE__NODE_ALTER_USER_MAPPING_STMT: simple(a, "ALTER USER MAPPING", true); break;
	case PG_QUERY__NODE__NODE_DROP_USER_MAPPING_STMT: simple(a, "DROP USER MAPPING", true); break;
	case PG_QUERY__NODE__NODE_IMPORT_FOREIGN_SCHEMA_STMT: simple(a, "IMPORT FOREIGN SCHEMA", true); break;
	case PG_QUERY__NODE__NODE_CREATE_TRANSFORM_STMT: simple(a, "CREATE TRANSFORM", true); break;
	case PG_QUERY__NODE__NODE_CREATE_AM_STMT: simple(a, "CREATE ACCESS METHOD", true); break;
	case PG_QUERY__NODE__NODE_ALTER_COLLATION_STMT: simple(a, "ALTER COLLATION", true); break;

	default:
		/* Not a statement libpg_query 15 produces at top level, or one added later:
		 * assume it may change the schema. */
		simple(a, "???", true);
		break;
	}
}

/* EXPLAIN plans its query, taking the query's locks; with ANALYZE the query also runs,
 * so EXPLAIN ANALYZE CREATE TABLE AS is DDL and EXPLAIN ANALYZE SELECT f() is opaque. */
static void analyze_explain(struct an *a, const PgQuery__ExplainStmt *s)
{
	struct stmt_info *st = a->st;
	bool analyze = option_on(s->options, s->n_options, "analyze");
	if (s->query && analyze) {
		analyze_node(a, s->query);
	} else if (s->query) {
		analyze_data(a, &s->query->base, false);
	}
	st->tag = "EXPLAIN";
	st->node = "ExplainStmt";
	if (!analyze) {
		st->ddl = false;
		st->opaque = false;
	}
}

/* CREATE SCHEMA s CREATE TABLE … CREATE VIEW …: the elements' objects count, the
 * statement stays a CREATE SCHEMA. */
static void analyze_create_schema(struct an *a, const PgQuery__CreateSchemaStmt *s)
{
	struct stmt_info *st = a->st;
	mark_created(a, add_object(a, NULL, s->schemaname, "schema", STMT_LOCK_NONE));
	if (s->authrole)
		add_object(a, NULL, s->authrole->rolename, "role", STMT_LOCK_NONE);
	for (size_t i = 0; i < s->n_schema_elts; i++) {
		struct stmt_info saved = *st;
		analyze_node(a, s->schema_elts[i]);
		saved.objects = st->objects;
		saved.nobjects = st->nobjects;
		saved.subcmds = st->subcmds;
		saved.nsubcmds = st->nsubcmds;
		saved.opaque |= st->opaque;
		saved.in_tx_block_ok &= st->in_tx_block_ok;
		*st = saved;
	}
	st->tag = "CREATE SCHEMA";
	st->ddl = true;
	st->if_not_exists = s->if_not_exists;
}

/* ------------------------------------------------------------------ identities */

static const char hexdigits[] = "0123456789abcdef";

static void to_hex(const uint8_t *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hexdigits[in[i] >> 4];
		out[2 * i + 1] = hexdigits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/*
 * The strict id and the stored tree: zero the locations, pack a ParseResult holding this
 * one RawStmt (with the parser's version, so a libpg_query upgrade that changes the tree
 * also changes the ids instead of colliding) and hash the bytes. protobuf-c packs fields
 * in declaration order and omits proto3 defaults, so equal trees give equal bytes.
 */
static bool strict_identity(struct stmt_info *st, int32_t version, PgQuery__RawStmt *raw)
{
	PgQuery__ParseResult one = PG_QUERY__PARSE_RESULT__INIT;
	PgQuery__RawStmt *stmts[1] = {raw};
	unsigned int mdlen = 0;

	raw->stmt_location = 0;
	raw->stmt_len = 0;
	zero_locations(&raw->base);
	one.version = version;
	one.n_stmts = 1;
	one.stmts = stmts;

	size_t len = pg_query__parse_result__get_packed_size(&one);
	st->tree = malloc(len ? len : 1);
	if (st->tree == NULL)
		return false;
	st->tree_len = pg_query__parse_result__pack(&one, st->tree);
	if (!EVP_Digest(st->tree, st->tree_len, st->strict_id, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
		return false;
	to_hex(st->strict_id, sizeof st->strict_id, st->strict_id_hex);
	return true;
}

/* libpg_query's fingerprint of the statement's own text: it normalizes constants away,
 * so `DEFAULT 5` and `DEFAULT 6` share one. A text that parsed as part of the whole
 * always parses alone; should it not, the fingerprint stays 0. */
static void fingerprint(struct stmt_info *st)
{
	PgQueryFingerprintResult fp = pg_query_fingerprint(st->text);
	if (fp.error == NULL)
		st->fingerprint = fp.fingerprint;
	snprintf(st->fingerprint_hex, sizeof st->fingerprint_hex, "%016" PRIx64, st->fingerprint);
	pg_query_free_fingerprint_result(fp);
}

/* ------------------------------------------------------------------ spans */

/* A cursor over the text that counts lines and columns. Columns count characters, not
 * bytes: a UTF-8 continuation byte (10xxxxxx) does not start a column. */
struct text_pos {
	size_t off;
	int line, column;
};

static void pos_advance(struct text_pos *p, const char *sql, size_t to)
{
	for (; p->off < to; p->off++) {
		unsigned char c = (unsigned char)sql[p->off];
		if (c == '\n') {
			p->line++;
			p->column = 1;
		} else if ((c & 0xC0) != 0x80) {
			p->column++;
		}
	}
}

/* PostgreSQL reports an error position as a 1-based character index (not a byte
 * offset) into the whole text; turn it into a line and column. */
static void error_position(const char *sql, int cursorpos, int *line, int *column)
{
	struct text_pos p = {0, 1, 1};
	size_t i = 0;
	*line = *column = 0;
	if (cursorpos <= 0)
		return;
	for (int chars = 0; sql[i] && chars < cursorpos - 1; chars++) {
		i++;
		while (((unsigned char)sql[i] & 0xC0) == 0x80)
			i++;
	}
	pos_advance(&p, sql, i);
	*line = p.line;
	*column = p.column;
}

/* ------------------------------------------------------------------ nesting depth */

static bool pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;
		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return true;
	}
	return false;
}

/*
 * Is the protobuf message of type d in buf nested at most max levels deep? protobuf-c's
 * unpack and pack, walk() and zero_locations() recurse once per level, a few hundred bytes
 * of stack each: "SELECT " followed by 8,000 unary '+' was enough to overflow the stack
 * and crash the proxy. This walk is iterative, with the descriptors telling which
 * length-delimited fields are messages. False too when the bytes are malformed.
 */
static bool pb_depth_ok(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len, int max)
{
	struct level {
		const ProtobufCMessageDescriptor *d;
		const uint8_t *end;
	} *st = malloc(((size_t)max + 1) * sizeof(*st));
	if (st == NULL)
		return false;
	int depth = 0;
	const uint8_t *p = buf;
	bool ok = true;
	st[0].d = d;
	st[0].end = buf + len;
	while (ok && depth >= 0) {
		if (p >= st[depth].end) {
			ok = p == st[depth].end;
			depth--;
			continue;
		}
		uint64_t key, n;
		ok = pb_varint(&p, st[depth].end, &key);
		if (!ok)
			break;
		switch (key & 7) {
		case 0:
			ok = pb_varint(&p, st[depth].end, &n);
			break;
		case 1:
		case 5: {
			size_t w = (key & 7) == 1 ? 8 : 4;
			ok = (size_t)(st[depth].end - p) >= w;
			p += ok ? w : 0;
			break;
		}
		case 2: {
			ok = pb_varint(&p, st[depth].end, &n) && n <= (uint64_t)(st[depth].end - p);
			if (!ok)
				break;
			const ProtobufCFieldDescriptor *f =
				protobuf_c_message_descriptor_get_field(st[depth].d, (unsigned)(key >> 3));
			if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
				ok = depth + 1 <= max;
				if (ok) {
					depth++;
					st[depth].d = f->descriptor;
					st[depth].end = p + n;
				}
			} else
				p += n;
			break;
		}
		default:
			ok = false;
			break;
		}
	}
	free(st);
	return ok;
}

/* ------------------------------------------------------------------ public API */

static void stmt_info_free(struct stmt_info *st)
{
	free(st->text);
	free(st->savepoint);
	for (int i = 0; i < st->nobjects; i++) {
		free(st->objects[i].schema);
		free(st->objects[i].name);
	}
	free(st->objects);
	for (int i = 0; i < st->nsubcmds; i++)
		free(st->subcmds[i].column);
	free(st->subcmds);
	free(st->tree);
}

void stmt_list_free(struct stmt_list *l)
{
	if (l == NULL)
		return;
	for (int i = 0; i < l->n; i++)
		stmt_info_free(&l->items[i]);
	free(l->items);
	free(l->error);
	memset(l, 0, sizeof *l);
}

/* Describe one RawStmt into st. False on out-of-memory. */
static bool analyze_one(const char *sql, size_t sql_len, int32_t version, PgQuery__RawStmt *raw,
			struct text_pos *pos, struct stmt_info *st)
{
	struct an a = {.st = st};

	/* The span: stmt_len 0 means "to the end of the text". Trim whitespace around it
	 * (the ';' is already outside), keeping comments, where inline overrides live. */
	size_t start = raw->stmt_location > 0 ? (size_t)raw->stmt_location : 0;
	size_t end = raw->stmt_len > 0 ? start + (size_t)raw->stmt_len : sql_len;
	if (start > sql_len)
		start = sql_len;
	if (end > sql_len || end < start)
		end = sql_len;
	while (start < end && is_space((unsigned char)sql[start]))
		start++;
	while (end > start && is_space((unsigned char)sql[end - 1]))
		end--;
	st->offset = start;
	st->length = end - start;
	pos_advance(pos, sql, start);
	st->line = pos->line;
	st->column = pos->column;
	st->text = strndup(sql + start, end - start);
	if (st->text == NULL)
		return false;

	st->in_tx_block_ok = true;
	st->node = "???";
	st->tag = "???";
	if (raw->stmt)
		analyze_node(&a, raw->stmt);
	free(a.ctes);
	if (a.oom)
		return false;

	/* The statement's lock: pre-existing objects and the relations it cannot name. */
	st->lock = a.implicit;
	for (int i = 0; i < st->nobjects; i++)
		if (!st->objects[i].created)
			st->lock = lock_max(st->lock, st->objects[i].lock);

	fingerprint(st);
	return strict_identity(st, version, raw);
}

bool stmt_analyze(const char *sql, struct stmt_list *out)
{
	memset(out, 0, sizeof *out);
	size_t sql_len = strlen(sql);

	PgQueryProtobufParseResult pr = pg_query_parse_protobuf(sql);
	if (pr.error) {
		out->parse_error = true;
		out->error = strdup(pr.error->message ? pr.error->message : "syntax error");
		error_position(sql, pr.error->cursorpos, &out->error_line, &out->error_column);
		pg_query_free_protobuf_parse_result(pr);
		return out->error != NULL;
	}

	if (!pb_depth_ok(&pg_query__parse_result__descriptor, (const uint8_t *)pr.parse_tree.data,
			 pr.parse_tree.len, STMT_MAX_DEPTH)) {
		pg_query_free_protobuf_parse_result(pr);
		out->too_deep = true;
		return false;
	}
	PgQuery__ParseResult *tree = pg_query__parse_result__unpack(NULL, pr.parse_tree.len,
								     (const uint8_t *)pr.parse_tree.data);
	pg_query_free_protobuf_parse_result(pr);
	if (tree == NULL)
		return false;

	bool ok = true;
	if (tree->n_stmts > 0) {
		out->items = calloc(tree->n_stmts, sizeof *out->items);
		ok = out->items != NULL;
	}
	struct text_pos pos = {0, 1, 1};
	for (size_t i = 0; ok && i < tree->n_stmts; i++) {
		out->n++;
		ok = analyze_one(sql, sql_len, tree->version, tree->stmts[i], &pos, &out->items[i]);
	}
	pg_query__parse_result__free_unpacked(tree, NULL);
	if (!ok)
		stmt_list_free(out);
	return ok;
}

/* ------------------------------------------------------------------ fast path */

static bool is_ident_char(unsigned char c)
{
	/* PostgreSQL identifiers: letters, digits, '_', '$', and any non-ASCII byte. */
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '$' || c >= 0x80;
}

static unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* Case-insensitive match of the whole word w (lowercase) at sql[i..]. */
static bool word_at(const char *sql, size_t len, size_t i, const char *w)
{
	size_t n = strlen(w);
	if (len - i < n)
		return false;
	for (size_t k = 0; k < n; k++)
		if (lower((unsigned char)sql[i + k]) != (unsigned char)w[k])
			return false;
	return i + n == len || !is_ident_char((unsigned char)sql[i + n]);
}

/*
 * Not a tokenizer: a conservative filter that may say false for harmless text and must
 * never say true for text that could change a schema.
 *  - The first word, after whitespace and `--` comments, must start a statement that
 *    cannot be DDL: SELECT, INSERT, UPDATE, DELETE, VALUES, TABLE, FETCH, MOVE, CLOSE,
 *    SHOW. Not WITH (a data-modifying CTE), not EXPLAIN (EXPLAIN ANALYZE runs its query,
 *    which may be CREATE TABLE AS).
 *  - No ';' except as the last non-whitespace character: no second statement.
 *  - No "/" "*" anywhere: block comments nest in PostgreSQL, and a comment could hide
 *    a ';' from this scan in ways only a real lexer gets right.
 *  - A SELECT must not contain the word INTO: SELECT … INTO creates a table.
 *  - No NUL byte: the server would see a different text than this scan.
 * A ';', "/" "*" or INTO inside a string literal makes the answer false: that costs one
 * parse, never a wrong answer. Functions called by the statement are not seen here;
 * stmt_analyze() reports them as opaque.
 */
bool stmt_fast_path(const char *sql, size_t len)
{
	return stmt_fast_path_ex(sql, len, true);
}

bool stmt_fast_path_ex(const char *sql, size_t len, bool writes)
{
	static const char *const first_words[] = {
		"select", "insert", "update", "delete", "values", "table", "fetch", "move", "close", "show",
	};
	size_t i = 0;

	for (;;) {
		while (i < len && is_space((unsigned char)sql[i]))
			i++;
		if (i + 1 < len && sql[i] == '-' && sql[i + 1] == '-') {
			while (i < len && sql[i] != '\n')
				i++;
			continue;
		}
		break;
	}

	const char *word = NULL;
	unsigned char first = i < len ? lower((unsigned char)sql[i]) : 0;
	for (size_t k = 0; k < sizeof first_words / sizeof *first_words; k++) {
		if ((unsigned char)first_words[k][0] == first && word_at(sql, len, i, first_words[k])) {
			word = first_words[k];
			break;
		}
	}
	if (word == NULL)
		return false;
	/* Policies that watch writes need INSERT/UPDATE/DELETE parsed. */
	if (!writes && (word == first_words[1] || word == first_words[2] || word == first_words[3]))
		return false;
	bool is_select = word == first_words[0];
	i += strlen(word);

	/* The rest is searched with memchr (vectorized by libc), so a 100 KB INSERT costs
	 * microseconds. */
	const char *p = sql + i, *end = sql + len;
	if (memchr(p, '\0', (size_t)(end - p)))
		return false;
	for (const char *q = p; (q = memchr(q, '/', (size_t)(end - q))) != NULL; q++)
		if (q + 1 < end && q[1] == '*')
			return false;
	const char *semi = memchr(p, ';', (size_t)(end - p));
	if (semi) {
		for (const char *q = semi + 1; q < end; q++)
			if (!is_space((unsigned char)*q))
				return false;
		end = semi;
	}
	if (is_select) {
		/* Visit each 'i' and 'I' in order: two memchr cursors, the nearer first. */
		const char *lo = memchr(p, 'i', (size_t)(end - p)), *up = memchr(p, 'I', (size_t)(end - p));
		while (lo || up) {
			const char *q = lo && (!up || lo < up) ? lo : up;
			if (!is_ident_char((unsigned char)q[-1]) &&
			    word_at(sql, (size_t)(end - sql), (size_t)(q - sql), "into"))
				return false;
			if (q == lo)
				lo = memchr(q + 1, 'i', (size_t)(end - q - 1));
			else
				up = memchr(q + 1, 'I', (size_t)(end - q - 1));
		}
	}
	return true;
}

const char *stmt_lock_name(enum stmt_lock l)
{
	static const char *const names[] = {
		[STMT_LOCK_NONE] = "NONE",
		[STMT_LOCK_ACCESS_SHARE] = "ACCESS SHARE",
		[STMT_LOCK_ROW_SHARE] = "ROW SHARE",
		[STMT_LOCK_ROW_EXCLUSIVE] = "ROW EXCLUSIVE",
		[STMT_LOCK_SHARE_UPDATE_EXCLUSIVE] = "SHARE UPDATE EXCLUSIVE",
		[STMT_LOCK_SHARE] = "SHARE",
		[STMT_LOCK_SHARE_ROW_EXCLUSIVE] = "SHARE ROW EXCLUSIVE",
		[STMT_LOCK_EXCLUSIVE] = "EXCLUSIVE",
		[STMT_LOCK_ACCESS_EXCLUSIVE] = "ACCESS EXCLUSIVE",
	};
	if ((unsigned)l < sizeof names / sizeof *names)
		return names[l];
	return "?";
}

char *stmt_normalize(const char *sql)
{
	PgQueryNormalizeResult r = pg_query_normalize(sql);
	char *out = NULL;
	if (!r.error && r.normalized_query)
		out = strdup(r.normalized_query);
	pg_query_free_normalize_result(r);
	return out;
}

const char *stmt_bookkeeping_tool(const char *schema, const char *name)
{
	/* The tables migration tools keep their own history in. Their DDL and DML are the
	 * tool's bookkeeping, not the migration: exempt from staging-first. */
	static const struct { const char *table, *tool; } known[] = {
		{ "flyway_schema_history", "flyway" }, { "schema_version", "flyway" },
		{ "alembic_version", "alembic" }, { "django_migrations", "django" },
		{ "schema_migrations", "rails/dbmate" }, { "ar_internal_metadata", "rails" },
		{ "knex_migrations", "knex" }, { "knex_migrations_lock", "knex" },
		{ "pgmigrations", "node-pg-migrate" }, { "databasechangelog", "liquibase" },
		{ "databasechangeloglock", "liquibase" }, { "_prisma_migrations", "prisma" },
		{ "goose_db_version", "goose" }, { "__diesel_schema_migrations", "diesel" },
		{ "gorp_migrations", "sql-migrate" },
	};
	if (schema && !strcmp(schema, "sqitch"))
		return "sqitch";
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (!strcmp(name, known[i].table))
			return known[i].tool;
	return NULL;
}

/* engine — see engine.h. */
#include "policies/engine.h"

#include <dirent.h>
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policies/override.h"
#include "protocol/pgw.h"
#include "policies/tree.h"

#define HOOK_EVERY 1000          /* instructions between budget checks */
#define POLICY_FILE_MAX (1 << 20)

struct policy {
	char *file;                  /* path as configured (owned) */
	char *name;                  /* basename without .lua: the default rule id (owned) */
	int env_ref;                 /* registry reference to its environment table */
	bool has_statement, has_connect, has_commit, has_lock_wait, has_end;
};

struct policy_engine {
	lua_State *L;
	struct policy *policies;
	int npolicies;
	bool fail_open;
	bool wants_dml;
	bool wants_writes;
	long budget;
	long steps;                  /* instructions used by the current call */
	bool overrun;                /* the current call hit its budget */
	size_t mem_used, mem_limit;
	const struct policy_session *current;   /* the session of the call in progress */
	int rows_ref;               /* session.statements rows already built, by seq (a Lua table) */
	int created_ref;            /* session.created as a Lua set, kept in step with the list */
	uint64_t created_key;       /* ... for the session lists with this cache_key */
	int created_n;
	uint64_t rows_key;          /* rows_ref holds rows of the session lists with this cache_key */
	int nrules;
	char last_error[700];
};

static void set_str(lua_State *L, const char *k, const char *v);
static void set_bool(lua_State *L, const char *k, bool v);
static void set_int(lua_State *L, const char *k, lua_Integer v);

/* ---------------------------------------------------------------- allocation and budget */

static void *l_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct policy_engine *e = ud;
	size_t old = ptr ? osize : 0;
	if (nsize == 0) {
		free(ptr);
		e->mem_used -= old;
		return NULL;
	}
	/* Refusing the allocation makes Lua raise a memory error inside the policy. */
	if (nsize > old && e->mem_used + (nsize - old) > e->mem_limit)
		return NULL;
	void *p = realloc(ptr, nsize);
	if (!p)
		return NULL;
	e->mem_used = e->mem_used - old + nsize;
	return p;
}

static struct policy_engine *engine_of(lua_State *L)
{
	return *(struct policy_engine **)lua_getextraspace(L);
}

static void budget_hook(lua_State *L, lua_Debug *ar)
{
	struct policy_engine *e = engine_of(L);
	e->steps += HOOK_EVERY;
	if (e->steps > e->budget) {
		e->overrun = true;
		luaL_error(L, "instruction budget exceeded (%I instructions)", (lua_Integer)e->budget);
	}
}

/* pcall/xpcall for policies: an overrun or a memory error cannot be caught and ignored. */
static int l_safe_pcall(lua_State *L)
{
	struct policy_engine *e = engine_of(L);
	luaL_checkany(L, 1);
	int n = lua_gettop(L);
	int st = lua_pcall(L, n - 1, LUA_MULTRET, 0);
	if (st != LUA_OK && (e->overrun || st == LUA_ERRMEM))
		return lua_error(L);
	lua_pushboolean(L, st == LUA_OK);
	lua_insert(L, 1);
	return lua_gettop(L);
}

static int l_safe_xpcall(lua_State *L)
{
	struct policy_engine *e = engine_of(L);
	int n = lua_gettop(L);
	luaL_checktype(L, 2, LUA_TFUNCTION);
	lua_pushvalue(L, 1);
	lua_copy(L, 2, 1);
	lua_replace(L, 2);  /* stack: handler, f, args… */
	int st = lua_pcall(L, n - 2, LUA_MULTRET, 1);
	if (st != LUA_OK && (e->overrun || st == LUA_ERRMEM))
		return lua_error(L);
	lua_pushboolean(L, st == LUA_OK);
	lua_replace(L, 1);
	return lua_gettop(L);
}

/* load() for policies: text only, and the caller's environment unless one is given. */
static int l_safe_load(lua_State *L)
{
	size_t len;
	const char *chunk = luaL_checklstring(L, 1, &len);
	const char *name = luaL_optstring(L, 2, "=(load)");
	int has_env = lua_gettop(L) >= 4;
	if (luaL_loadbufferx(L, chunk, len, name, "t") != LUA_OK) {
		luaL_pushfail(L);
		lua_insert(L, -2);
		return 2;
	}
	if (has_env) {
		lua_pushvalue(L, 4);
		lua_setupvalue(L, -2, 1);
	} else {
		/* Inherit the calling policy's environment (upvalue _ENV of the caller). */
		lua_pushvalue(L, lua_upvalueindex(1));
		lua_setupvalue(L, -2, 1);
	}
	return 1;
}

static int l_safe_getmetatable(lua_State *L)
{
	/* The string metatable is shared by every policy: never hand it out. */
	if (lua_type(L, 1) == LUA_TSTRING)
		return 0;
	if (!lua_getmetatable(L, 1))
		return 0;
	if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
		return 1;
	return 1;
}

/* ---------------------------------------------------------------- sandbox */

static void copy_table(lua_State *L, const char *lib, const char *const *skip)
{
	lua_getglobal(L, lib);
	int src = lua_gettop(L);
	lua_newtable(L);
	lua_pushnil(L);
	while (lua_next(L, src)) {
		bool drop = false;
		if (lua_type(L, -2) == LUA_TSTRING)
			for (const char *const *s = skip; s && *s; s++)
				if (!strcmp(lua_tostring(L, -2), *s))
					drop = true;
		if (drop)
			lua_pop(L, 1);
		else {
			lua_pushvalue(L, -2);
			lua_insert(L, -2);
			lua_settable(L, -4);
		}
	}
	lua_remove(L, src);
}

/* Decision constructors and helpers, run inside every policy environment. */
static const char prelude[] =
	"function allow() return { action = 'allow' } end\n"
	"function deny(t) if type(t) == 'string' then t = { message = t } end\n"
	"  t = t or {}; t.action = 'deny'; return t end\n"
	"function warn(t, hint) if type(t) == 'string' then t = { message = t, hint = hint } end\n"
	"  t = t or {}; t.action = 'warn'; return t end\n"
	"function set(t) t = t or {}; t.action = 'set'; return t end\n"
	"function cancel() return { action = 'cancel' } end\n"
	"LOCK = { NONE = 0, ACCESS_SHARE = 1, ROW_SHARE = 2, ROW_EXCLUSIVE = 3,\n"
	"  SHARE_UPDATE_EXCLUSIVE = 4, SHARE = 5, SHARE_ROW_EXCLUSIVE = 6, EXCLUSIVE = 7,\n"
	"  ACCESS_EXCLUSIVE = 8 }\n"
	"function qualified(o) if o.schema then return o.schema .. '.' .. o.name end return o.name end\n"
	"function created_in_session(session, o)\n"
	"  local name = type(o) == 'string' and o or qualified(o)\n"
	"  return session.created[name] == true end\n";

/* facts(relation): live facts about a relation of the statement, or nil when unknown. */
static int l_facts(lua_State *L)
{
	struct policy_engine *e = engine_of(L);
	char name[300];
	if (lua_istable(L, 1)) {
		lua_getfield(L, 1, "schema");
		lua_getfield(L, 1, "name");
		const char *sch = lua_tostring(L, -2), *nm = lua_tostring(L, -1);
		if (!nm)
			return luaL_argerror(L, 1, "an object with a name");
		snprintf(name, sizeof(name), "%s%s%s", sch ? sch : "", sch ? "." : "", nm);
		lua_pop(L, 2);
	} else
		snprintf(name, sizeof(name), "%s", luaL_checkstring(L, 1));
	const struct policy_session *s = e->current;
	struct policy_facts f;
	if (!s || !s->facts || !s->facts(s->facts_arg, name, &f))
		return 0;
	lua_createtable(L, 0, 8);
	set_bool(L, "exists", f.exists);
	if (f.exists) {
		char kind[2] = { f.kind, 0 };
		set_str(L, "kind", kind);
		if (f.rows >= 0)
			set_int(L, "rows", f.rows);
		set_int(L, "bytes", f.bytes);
		set_int(L, "indexes", f.indexes);
	}
	lua_createtable(L, f.nholders, 0);
	for (int i = 0; i < f.nholders; i++) {
		const struct policy_holder *h = &f.holders[i];
		lua_createtable(L, 0, 7);
		set_int(L, "pid", h->pid);
		set_str(L, "mode", h->mode);
		set_bool(L, "granted", h->granted);
		set_str(L, "application_name", h->application_name);
		set_str(L, "state", h->state);
		lua_pushnumber(L, h->xact_age);
		lua_setfield(L, -2, "xact_age");
		set_str(L, "query", h->query);
		lua_rawseti(L, -2, i + 1);
	}
	lua_setfield(L, -2, "holders");
	return 1;
}

static int l_log(lua_State *L)
{
	/* print(): one line on stderr. luaL_tolstring pushes each value and luaL_addvalue pops
	 * it into the buffer, so the stack is what luaL_Buffer expects. */
	int n = lua_gettop(L);
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	for (int i = 1; i <= n; i++) {
		if (i > 1)
			luaL_addchar(&b, '\t');
		luaL_tolstring(L, i, NULL);
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);
	fprintf(stderr, "policy: %s\n", lua_tostring(L, -1));
	return 0;
}

/* Build a fresh environment table for one policy file; leaves it on the stack. */
static bool make_env(struct policy_engine *e, char *err, size_t errlen)
{
	lua_State *L = e->L;
	lua_newtable(L);
	int env = lua_gettop(L);
	static const char *const base[] = { "assert", "error", "ipairs", "next", "pairs", "rawequal",
					    "rawget", "rawlen", "rawset", "select", "setmetatable",
					    "tonumber", "tostring", "type", "_VERSION", NULL };
	for (const char *const *n = base; *n; n++) {
		lua_getglobal(L, *n);
		lua_setfield(L, env, *n);
	}
	static const char *const string_skip[] = { "dump", NULL };
	copy_table(L, "string", string_skip);
	lua_setfield(L, env, "string");
	copy_table(L, "table", NULL);
	lua_setfield(L, env, "table");
	copy_table(L, "math", NULL);
	lua_setfield(L, env, "math");
	copy_table(L, "utf8", NULL);
	lua_setfield(L, env, "utf8");
	copy_table(L, "coroutine", NULL);
	lua_setfield(L, env, "coroutine");
	lua_newtable(L);
	lua_getglobal(L, "os");
	static const char *const os_ok[] = { "time", "clock", "date", "difftime", NULL };
	for (const char *const *n = os_ok; *n; n++) {
		lua_getfield(L, -1, *n);
		lua_setfield(L, -3, *n);
	}
	lua_pop(L, 1);
	lua_setfield(L, env, "os");
	lua_pushcfunction(L, l_safe_pcall);
	lua_setfield(L, env, "pcall");
	lua_pushcfunction(L, l_safe_xpcall);
	lua_setfield(L, env, "xpcall");
	lua_pushcfunction(L, l_safe_getmetatable);
	lua_setfield(L, env, "getmetatable");
	lua_pushvalue(L, env);
	lua_pushcclosure(L, l_safe_load, 1);
	lua_setfield(L, env, "load");
	lua_pushcfunction(L, l_log);
	lua_setfield(L, env, "print");
	lua_pushcfunction(L, l_facts);
	lua_setfield(L, env, "facts");
	lua_pushvalue(L, env);
	lua_setfield(L, env, "_G");
	if (luaL_loadbufferx(L, prelude, sizeof(prelude) - 1, "=prelude", "t") != LUA_OK) {
		snprintf(err, errlen, "prelude: %s", lua_tostring(L, -1));
		lua_pop(L, 1);
		return false;
	}
	lua_pushvalue(L, env);
	lua_setupvalue(L, -2, 1);
	if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
		snprintf(err, errlen, "prelude: %s", lua_tostring(L, -1));
		lua_pop(L, 1);
		return false;
	}
	return true;
}

/* Run the function on top of the stack (with nargs below it) under the budget. */
static int guarded_call(struct policy_engine *e, int nargs, int nres)
{
	e->steps = 0;
	e->overrun = false;
	lua_sethook(e->L, budget_hook, LUA_MASKCOUNT, HOOK_EVERY);
	int st = lua_pcall(e->L, nargs, nres, 0);
	lua_sethook(e->L, NULL, 0, 0);
	return st;
}

static char *read_all(const char *path, size_t *len, char *err, size_t errlen)
{
	FILE *fp = fopen(path, "r");
	if (!fp) {
		snprintf(err, errlen, "cannot open policy file \"%s\": %s", path, strerror(errno));
		return NULL;
	}
	char *buf = malloc(POLICY_FILE_MAX + 1);
	if (!buf)
		abort();
	*len = fread(buf, 1, POLICY_FILE_MAX + 1, fp);
	fclose(fp);
	if (*len > POLICY_FILE_MAX) {
		snprintf(err, errlen, "policy file \"%s\" is larger than 1 MiB", path);
		free(buf);
		return NULL;
	}
	buf[*len] = 0;
	return buf;
}

/* Load and run `path` with the environment on top of the stack; leaves nres results. */
static bool run_file(struct policy_engine *e, const char *path, int nres, char *err, size_t errlen)
{
	size_t len;
	char *src = read_all(path, &len, err, errlen);
	if (!src)
		return false;
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	char chunkname[512];
	snprintf(chunkname, sizeof(chunkname), "@%s", base);
	if (luaL_loadbufferx(e->L, src, len, chunkname, "t") != LUA_OK) {
		snprintf(err, errlen, "%s", lua_tostring(e->L, -1));
		lua_pop(e->L, 1);
		free(src);
		return false;
	}
	free(src);
	lua_pushvalue(e->L, -2);
	lua_setupvalue(e->L, -2, 1);
	if (guarded_call(e, 0, nres) != LUA_OK) {
		snprintf(err, errlen, "%s", lua_tostring(e->L, -1));
		lua_pop(e->L, 1);
		return false;
	}
	return true;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Load the rule library: every rules/<id>.lua in its own sandbox returning a rule table,
 * collected into RULES of library.lua's environment, with LIBRARY describing the profile
 * and the configured levels. library.lua then becomes one more policy.
 */
static bool load_library(struct policy_engine *e, const struct policy_options *o, char *err, size_t errlen)
{
	lua_State *L = e->L;
	char path[1024];
	snprintf(path, sizeof(path), "%s/rules", o->library_dir);
	DIR *d = opendir(path);
	if (!d) {
		snprintf(err, errlen, "cannot open the rule library \"%s\": %s (set lua_scripts_dir)", path, strerror(errno));
		return false;
	}
	char **names = NULL;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < 5 || strcmp(de->d_name + l - 4, ".lua") || de->d_name[0] == '.')
			continue;
		names = realloc(names, (n + 1) * sizeof(char *));
		if (!names || !(names[n] = strdup(de->d_name)))
			abort();
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(char *), cmp_names);
	struct policy *p = &e->policies[e->npolicies];
	p->file = strdup("library.lua");
	p->name = strdup("ddlguard-rules");
	e->npolicies++;
	bool ok = make_env(e, err, errlen);
	int env = lua_gettop(L);
	lua_createtable(L, n, 0);
	int list = lua_gettop(L);
	for (int i = 0; ok && i < n; i++) {
		snprintf(path, sizeof(path), "%s/rules/%s", o->library_dir, names[i]);
		ok = make_env(e, err, errlen) && run_file(e, path, 1, err, errlen);
		if (!ok)
			break;
		char id[256];
		snprintf(id, sizeof(id), "%s", names[i]);
		id[strlen(id) - 4] = 0;
		lua_getfield(L, -1, "id");
		lua_getfield(L, -2, "check");
		if (!lua_istable(L, -3) || !lua_isstring(L, -2) || strcmp(lua_tostring(L, -2), id) ||
		    !lua_isfunction(L, -1)) {
			snprintf(err, errlen, "%s: a rule file must return { id = \"%s\", check = function … }", path, id);
			ok = false;
			break;
		}
		lua_pop(L, 2);
		/* A rule that judges writes (backfills, session_replication_role) says dml = true. */
		lua_getfield(L, -1, "dml");
		if (lua_toboolean(L, -1))
			e->wants_writes = true;
		lua_pop(L, 1);
		lua_rawseti(L, list, i + 1);
		lua_pop(L, 1);  /* the rule's environment */
		e->nrules++;
	}
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (!ok)
		return false;
	lua_setfield(L, env, "RULES");
	lua_createtable(L, 0, 4);
	lua_pushstring(L, o->profile);
	lua_setfield(L, -2, "profile");
	lua_pushstring(L, o->rule_levels ? o->rule_levels : "");
	lua_setfield(L, -2, "levels");
	lua_pushinteger(L, o->small_table_rows > 0 ? o->small_table_rows : 10000);
	lua_setfield(L, -2, "small_table_rows");
	lua_pushstring(L, o->lock_timeout ? o->lock_timeout : "2s");
	lua_setfield(L, -2, "lock_timeout");
	lua_pushstring(L, o->statement_timeout ? o->statement_timeout : "30min");
	lua_setfield(L, -2, "statement_timeout");
	lua_setfield(L, env, "LIBRARY");
	snprintf(path, sizeof(path), "%s/library.lua", o->library_dir);
	if (!run_file(e, path, 0, err, errlen))
		return false;
	lua_getfield(L, env, "on_statement");
	p->has_statement = lua_isfunction(L, -1);
	lua_pop(L, 1);
	lua_getfield(L, env, "on_end");
	p->has_end = lua_isfunction(L, -1);
	lua_pop(L, 1);
	p->env_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	return true;
}

struct policy_engine *policy_engine_load(const struct policy_options *o, char *err, size_t errlen)
{
	struct policy_engine *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->fail_open = o->fail_open;
	e->rows_ref = LUA_NOREF;
	e->created_ref = LUA_NOREF;
	e->budget = o->budget > 0 ? o->budget : 1000000;
	e->mem_limit = o->mem_limit ? o->mem_limit : 64u << 20;
	e->L = lua_newstate(l_alloc, e);
	if (!e->L) {
		snprintf(err, errlen, "cannot create a Lua state");
		free(e);
		return NULL;
	}
	*(struct policy_engine **)lua_getextraspace(e->L) = e;
	luaL_openlibs(e->L);
	/* Hide the shared string metatable from policies. */
	lua_pushliteral(e->L, "");
	lua_getmetatable(e->L, -1);
	lua_pushboolean(e->L, 0);
	lua_setfield(e->L, -2, "__metatable");
	lua_pop(e->L, 2);
	/* One slot more for the rule library. */
	e->policies = calloc(o->nfiles + 1, sizeof(*e->policies));
	if (!e->policies)
		abort();
	for (int i = 0; i < o->nfiles; i++) {
		struct policy *p = &e->policies[e->npolicies];
		size_t len;
		char *src = read_all(o->files[i], &len, err, errlen);
		if (!src)
			goto fail;
		p->file = strdup(o->files[i]);
		const char *base = strrchr(o->files[i], '/');
		base = base ? base + 1 : o->files[i];
		p->name = strdup(base);
		char *dot = strrchr(p->name, '.');
		if (dot && !strcmp(dot, ".lua"))
			*dot = 0;
		e->npolicies++;
		if (!make_env(e, err, errlen)) {
			free(src);
			goto fail;
		}
		/* Lua keeps only the tail of long chunk names: name the file by its base name,
		 * so errors read "rule.lua:12: …". */
		char chunkname[512];
		snprintf(chunkname, sizeof(chunkname), "@%s", base);
		if (luaL_loadbufferx(e->L, src, len, chunkname, "t") != LUA_OK) {
			snprintf(err, errlen, "%s", lua_tostring(e->L, -1));
			free(src);
			goto fail;
		}
		free(src);
		lua_pushvalue(e->L, -2);
		lua_setupvalue(e->L, -2, 1);
		if (guarded_call(e, 0, 0) != LUA_OK) {
			snprintf(err, errlen, "%s", lua_tostring(e->L, -1));
			goto fail;
		}
		lua_getfield(e->L, -1, "on_statement");
		p->has_statement = lua_isfunction(e->L, -1);
		lua_getfield(e->L, -2, "on_connect");
		p->has_connect = lua_isfunction(e->L, -1);
		lua_getfield(e->L, -3, "on_commit");
		p->has_commit = lua_isfunction(e->L, -1);
		lua_getfield(e->L, -4, "on_lock_wait");
		p->has_lock_wait = lua_isfunction(e->L, -1);
		lua_pop(e->L, 1);
		lua_getfield(e->L, -4, "on_end");
		p->has_end = lua_isfunction(e->L, -1);
		lua_pop(e->L, 1);
		lua_getfield(e->L, -4, "see_dml");
		if (lua_toboolean(e->L, -1))
			e->wants_dml = true;
		lua_getfield(e->L, -5, "see_writes");
		if (lua_toboolean(e->L, -1))
			e->wants_writes = true;
		lua_pop(e->L, 5);
		if (!p->has_statement && !p->has_connect && !p->has_commit && !p->has_lock_wait && !p->has_end) {
			snprintf(err, errlen, "%s: defines none of on_statement, on_connect, on_commit, on_lock_wait, on_end", p->file);
			goto fail;
		}
		p->env_ref = luaL_ref(e->L, LUA_REGISTRYINDEX);
	}
	/* The library runs after the DBA's own files, which may set levels too: a global
	 * rule_levels = { ["drop-column"] = "warn", ["production/drop-column"] = "deny" }.
	 * The configuration's rule_levels come after them and win. */
	if (o->profile && strcmp(o->profile, "off")) {
		struct pgw_buf lv = { 0 };
		for (int i = 0; i < e->npolicies; i++) {
			lua_rawgeti(e->L, LUA_REGISTRYINDEX, e->policies[i].env_ref);
			if (lua_getfield(e->L, -1, "rule_levels") == LUA_TTABLE) {
				lua_pushnil(e->L);
				while (lua_next(e->L, -2)) {
					if (lua_type(e->L, -2) == LUA_TSTRING && lua_type(e->L, -1) == LUA_TSTRING) {
						const char *k = lua_tostring(e->L, -2), *v = lua_tostring(e->L, -1);
						if (lv.len)
							pgw_buf_put(&lv, ", ", 2);
						pgw_buf_put(&lv, k, strlen(k));
						pgw_buf_put_u8(&lv, ':');
						pgw_buf_put(&lv, v, strlen(v));
					}
					lua_pop(e->L, 1);
				}
			}
			lua_pop(e->L, 2);
		}
		if (o->rule_levels && *o->rule_levels) {
			if (lv.len)
				pgw_buf_put(&lv, ", ", 2);
			pgw_buf_put(&lv, o->rule_levels, strlen(o->rule_levels));
		}
		pgw_buf_put_u8(&lv, 0);
		struct policy_options lo = *o;
		lo.rule_levels = (const char *)lv.data;
		bool ok = load_library(e, &lo, err, errlen);
		pgw_buf_free(&lv);
		if (!ok)
			goto fail;
	}
	lua_gc(e->L, LUA_GCCOLLECT);
	/* A large heap that never changes (every sandbox, the rules) and short-lived garbage
	 * per statement: the generational collector's case; incremental cycles would keep
	 * walking the static part. */
	lua_gc(e->L, LUA_GCGEN, 0, 0);
	return e;
fail:
	policy_engine_free(e);
	return NULL;
}

void policy_engine_free(struct policy_engine *e)
{
	if (!e)
		return;
	if (e->L)
		lua_close(e->L);
	for (int i = 0; i < e->npolicies; i++) {
		free(e->policies[i].file);
		free(e->policies[i].name);
	}
	free(e->policies);
	free(e);
}

bool policy_engine_wants_dml(const struct policy_engine *e)
{
	return e && e->wants_dml;
}

bool policy_engine_wants_writes(const struct policy_engine *e)
{
	return e && (e->wants_writes || e->wants_dml);
}

bool policy_engine_has_connect(const struct policy_engine *e)
{
	if (!e)
		return false;
	for (int i = 0; i < e->npolicies; i++)
		if (e->policies[i].has_connect)
			return true;
	return false;
}

int policy_engine_count(const struct policy_engine *e)
{
	return e ? e->npolicies : 0;
}

int policy_engine_rule_count(const struct policy_engine *e)
{
	return e ? e->nrules : 0;
}

const char *policy_last_error(const struct policy_engine *e)
{
	return e && e->last_error[0] ? e->last_error : NULL;
}

long policy_parse_duration(const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -1;
	while (*end == ' ')
		end++;
	double ms;
	if (!*end || !strcmp(end, "ms"))
		ms = v;
	else if (!strcmp(end, "s"))
		ms = v * 1000;
	else if (!strcmp(end, "min"))
		ms = v * 60000;
	else if (!strcmp(end, "h"))
		ms = v * 3600000;
	else if (!strcmp(end, "d"))
		ms = v * 86400000.0;
	else
		return -1;
	if (ms > 9.0e15)
		return -1;
	return (long)ms;
}

/* ---------------------------------------------------------------- marshalling */

static void set_str(lua_State *L, const char *k, const char *v)
{
	if (!v)
		return;
	lua_pushstring(L, v);
	lua_setfield(L, -2, k);
}

static void set_bool(lua_State *L, const char *k, bool v)
{
	lua_pushboolean(L, v);
	lua_setfield(L, -2, k);
}

static void set_int(lua_State *L, const char *k, lua_Integer v)
{
	lua_pushinteger(L, v);
	lua_setfield(L, -2, k);
}

static int l_stmt_index(lua_State *L)
{
	/* stmt.tree is converted only when a policy reads it. */
	const char *k = lua_tostring(L, 2);
	if (k && !strcmp(k, "tree")) {
		lua_getfield(L, 1, "__tree_pb");
		size_t len;
		const char *pb = lua_tolstring(L, -1, &len);
		if (!pb)
			return 0;
		tree_push(L, (const uint8_t *)pb, len);
		lua_pushvalue(L, -1);
		lua_setfield(L, 1, "tree");   /* cache: the next read is a plain field */
		return 1;
	}
	return 0;
}

static void push_stmt(lua_State *L, const struct stmt_info *st)
{
	lua_createtable(L, 0, 32);
	set_str(L, "text", st->text);
	set_str(L, "tag", st->tag);
	set_str(L, "node", st->node);
	set_bool(L, "ddl", st->ddl);
	set_bool(L, "opaque", st->opaque);
	set_bool(L, "concurrently", st->concurrently);
	set_bool(L, "not_valid", st->not_valid);
	set_bool(L, "if_exists", st->if_exists);
	set_bool(L, "if_not_exists", st->if_not_exists);
	set_bool(L, "cascade", st->cascade);
	set_bool(L, "in_transaction_ok", st->in_tx_block_ok);
	set_str(L, "lock", stmt_lock_name(st->lock));
	set_int(L, "lock_level", st->lock);
	set_int(L, "line", st->line);
	set_int(L, "column", st->column);
	set_str(L, "fingerprint", st->fingerprint_hex);
	set_str(L, "strict_id", st->strict_id_hex);
	lua_createtable(L, st->nobjects, 0);
	for (int i = 0; i < st->nobjects; i++) {
		const struct stmt_object *o = &st->objects[i];
		lua_createtable(L, 0, 10);
		set_str(L, "schema", o->schema);
		set_str(L, "name", o->name);
		set_str(L, "kind", o->kind);
		set_str(L, "lock", stmt_lock_name(o->lock));
		set_int(L, "lock_level", o->lock);
		set_bool(L, "rewrite", o->rewrite);
		set_bool(L, "scan", o->scan);
		set_bool(L, "created", o->created);
		set_bool(L, "dropped", o->dropped);
		set_str(L, "bookkeeping", stmt_bookkeeping_tool(o->schema, o->name));
		lua_rawseti(L, -2, i + 1);
	}
	lua_setfield(L, -2, "objects");
	lua_createtable(L, st->nsubcmds, 0);
	for (int i = 0; i < st->nsubcmds; i++) {
		const struct stmt_subcmd *c = &st->subcmds[i];
		lua_createtable(L, 0, 6);
		set_str(L, "name", c->name);
		set_str(L, "column", c->column);
		set_str(L, "lock", stmt_lock_name(c->lock));
		set_int(L, "lock_level", c->lock);
		set_bool(L, "rewrite", c->rewrite);
		set_bool(L, "scan", c->scan);
		set_bool(L, "not_valid", c->not_valid);
		lua_rawseti(L, -2, i + 1);
	}
	lua_setfield(L, -2, "subcommands");
	if (st->tree && st->tree_len) {
		lua_pushlstring(L, (const char *)st->tree, st->tree_len);
		lua_setfield(L, -2, "__tree_pb");
	}
	lua_createtable(L, 0, 1);
	lua_pushcfunction(L, l_stmt_index);
	lua_setfield(L, -2, "__index");
	lua_setmetatable(L, -2);
}

/*
 * session.created and session.statements grow with the migration; copying them into Lua
 * for every statement would make a long migration quadratic. They are views answered by C
 * from the session of the call in progress.
 */
static int l_created_index(lua_State *L)
{
	struct policy_engine *e = engine_of(L);
	const struct policy_session *s = e->current;
	const char *k = lua_tostring(L, 2);
	if (!s || !k)
		return 0;
	/* The list only grows within a session (and shrinks on a rollback): keep a Lua set
	 * in step with it, so a lookup costs a hash probe, not a scan. */
	if (e->created_ref == LUA_NOREF || e->created_key != s->cache_key || !s->cache_key ||
	    s->ncreated < e->created_n) {
		if (e->created_ref != LUA_NOREF)
			luaL_unref(L, LUA_REGISTRYINDEX, e->created_ref);
		lua_newtable(L);
		e->created_ref = luaL_ref(L, LUA_REGISTRYINDEX);
		e->created_key = s->cache_key;
		e->created_n = 0;
	}
	lua_rawgeti(L, LUA_REGISTRYINDEX, e->created_ref);
	for (; e->created_n < s->ncreated; e->created_n++) {
		lua_pushboolean(L, 1);
		lua_setfield(L, -2, s->created[e->created_n]);
	}
	if (lua_getfield(L, -1, k) == LUA_TBOOLEAN)
		return 1;
	return 0;
}

static int l_statements_index(lua_State *L)
{
	struct policy_engine *e = engine_of(L);
	const struct policy_session *s = e->current;
	lua_Integer i = lua_tointeger(L, 2);
	if (!s || i < 1 || i > s->ntx)
		return 0;
	const struct policy_tx_stmt *t = &s->tx[i - 1];
	/* Rules look back over the transaction on every statement: build each row once per
	 * session (rows are keyed by the statement's seq, never reused within a session). */
	if (e->rows_key != s->cache_key || !s->cache_key || e->rows_ref == LUA_NOREF) {
		if (e->rows_ref != LUA_NOREF)
			luaL_unref(L, LUA_REGISTRYINDEX, e->rows_ref);
		lua_newtable(L);
		e->rows_ref = luaL_ref(L, LUA_REGISTRYINDEX);
		e->rows_key = s->cache_key;
	}
	lua_rawgeti(L, LUA_REGISTRYINDEX, e->rows_ref);
	if (t->seq && lua_rawgeti(L, -1, (lua_Integer)t->seq) == LUA_TTABLE)
		return 1;
	lua_pop(L, 1);
	lua_createtable(L, 0, 3);
	set_str(L, "tag", t->tag);
	set_str(L, "text", t->text);
	set_str(L, "strict_id", t->strict_id);
	if (t->seq) {
		lua_pushvalue(L, -1);
		lua_rawseti(L, -3, (lua_Integer)t->seq);
	}
	return 1;
}

static int l_statements_len(lua_State *L)
{
	const struct policy_session *s = engine_of(L)->current;
	lua_pushinteger(L, s ? s->ntx : 0);
	return 1;
}

static void push_view(lua_State *L, lua_CFunction index, lua_CFunction len)
{
	lua_newtable(L);
	lua_createtable(L, 0, 2);
	lua_pushcfunction(L, index);
	lua_setfield(L, -2, "__index");
	if (len) {
		lua_pushcfunction(L, len);
		lua_setfield(L, -2, "__len");
	}
	lua_setmetatable(L, -2);
}

static void push_session(lua_State *L, const struct policy_session *s)
{
	lua_createtable(L, 0, 12);
	set_str(L, "user", s->user);
	set_str(L, "database", s->database);
	set_str(L, "application_name", s->application_name ? s->application_name : "");
	set_str(L, "client_addr", s->client_addr);
	set_str(L, "environment", s->environment);
	set_bool(L, "tls", s->tls);
	set_str(L, "tx_status", s->tx_status == 'T' ? "in_transaction" :
				s->tx_status == 'E' ? "failed" : "idle");
	push_view(L, l_statements_index, l_statements_len);
	lua_setfield(L, -2, "statements");
	push_view(L, l_created_index, NULL);
	lua_setfield(L, -2, "created");
}

/* ---------------------------------------------------------------- decisions */

static const char *opt_string(lua_State *L, int t, const char *k, bool *bad)
{
	int ty = lua_getfield(L, t, k);
	const char *v = NULL;
	if (ty == LUA_TSTRING || ty == LUA_TNUMBER)
		v = lua_tostring(L, -1);
	else if (ty != LUA_TNIL)
		*bad = true;
	lua_pop(L, 1);  /* the string stays alive: it is referenced by the table */
	return v;
}

static long opt_duration(lua_State *L, int t, const char *k, bool *bad)
{
	int ty = lua_getfield(L, t, k);
	long ms = 0;
	if (ty == LUA_TNUMBER)
		ms = (long)lua_tonumber(L, -1);
	else if (ty == LUA_TSTRING)
		ms = policy_parse_duration(lua_tostring(L, -1));
	else if (ty != LUA_TNIL)
		*bad = true;
	if (ms < 0)
		*bad = true;
	lua_pop(L, 1);
	return ms;
}

/* Read one decision table at index t into v. False when it is not a decision. */
static bool read_decision(lua_State *L, int t, const struct policy *p, struct verdict *v,
			  char *why, size_t whylen)
{
	bool bad = false;
	const char *action = opt_string(L, t, "action", &bad);
	if (!action) {
		snprintf(why, whylen, "returned a table that is not a decision (use allow(), deny{…}, warn(…) or set{…})");
		return false;
	}
	const char *rule = opt_string(L, t, "rule", &bad);
	if (!rule)
		rule = p->name;
	if (!strcmp(action, "allow"))
		return true;
	if (!strcmp(action, "deny")) {
		const char *sqlstate = opt_string(L, t, "sqlstate", &bad);
		const char *msg = opt_string(L, t, "message", &bad);
		const char *detail = opt_string(L, t, "detail", &bad);
		const char *hint = opt_string(L, t, "hint", &bad);
		if (sqlstate && strlen(sqlstate) != 5) {
			snprintf(why, whylen, "deny: sqlstate must have 5 characters, got \"%s\"", sqlstate);
			return false;
		}
		if (bad) {
			snprintf(why, whylen, "deny: message, detail, hint, rule and sqlstate must be strings");
			return false;
		}
		struct verdict d;
		verdict_init(&d);
		verdict_deny(&d, sqlstate, rule, msg, detail, hint);
		lua_getfield(L, t, "override");
		d.overridable = lua_toboolean(L, -1);
		lua_pop(L, 1);
		verdict_merge(v, &d);
		return true;
	}
	if (!strcmp(action, "warn")) {
		const char *msg = opt_string(L, t, "message", &bad);
		const char *hint = opt_string(L, t, "hint", &bad);
		if (bad || !msg) {
			snprintf(why, whylen, "warn: needs a message string");
			return false;
		}
		verdict_add_warning(v, rule, msg, hint);
		return true;
	}
	if (!strcmp(action, "set")) {
		long lt = opt_duration(L, t, "lock_timeout", &bad);
		long st = opt_duration(L, t, "statement_timeout", &bad);
		if (bad) {
			snprintf(why, whylen, "set: lock_timeout and statement_timeout take milliseconds or \"2s\", \"500ms\", \"1min\"");
			return false;
		}
		struct verdict d;
		verdict_init(&d);
		d.lock_timeout_ms = (int)lt;
		d.statement_timeout_ms = (int)st;
		verdict_merge(v, &d);
		return true;
	}
	if (!strcmp(action, "cancel")) {
		v->cancel = true;
		return true;
	}
	snprintf(why, whylen, "unknown action \"%s\"", action);
	return false;
}

static void policy_failed(struct policy_engine *e, const struct policy *p, const char *what,
			  struct verdict *v)
{
	snprintf(e->last_error, sizeof(e->last_error), "%s", what);
	v->policy_error = true;
	if (e->fail_open)
		return;
	char msg[600];
	snprintf(msg, sizeof(msg), "ddlguard could not evaluate policy \"%s\"", p->name);
	struct verdict d;
	verdict_init(&d);
	verdict_deny(&d, "42501", p->name, msg, what,
		     "Fix the policy, or set policy_failure = open to let statements through when a policy fails.");
	verdict_merge(v, &d);
}

/* Call hook `name` of policy p with the nargs values on the stack; fold its answer. */
static void call_hook(struct policy_engine *e, struct policy *p, const char *name, int nargs,
		      struct verdict *v, bool want_decision)
{
	lua_State *L = e->L;
	int base = lua_gettop(L) - nargs;
	lua_rawgeti(L, LUA_REGISTRYINDEX, p->env_ref);
	lua_getfield(L, -1, name);
	lua_remove(L, -2);
	lua_insert(L, base + 1);
	int st = guarded_call(e, nargs, 1);
	if (st != LUA_OK) {
		const char *m = lua_tostring(L, -1);
		char what[512];
		snprintf(what, sizeof(what), "%s", m ? m : (st == LUA_ERRMEM ? "out of memory (memory cap)" : "error"));
		if (st == LUA_ERRMEM)
			snprintf(what, sizeof(what), "%s: policy memory limit exceeded", p->file);
		lua_settop(L, base);
		policy_failed(e, p, what, v);
		return;
	}
	if (want_decision) {
		int r = lua_gettop(L);
		char why[256] = "";
		bool ok = true;
		if (lua_isnil(L, r) || (lua_isboolean(L, r) && lua_toboolean(L, r)))
			;
		else if (!lua_istable(L, r)) {
			snprintf(why, sizeof(why), "returned a %s, not a decision", luaL_typename(L, r));
			ok = false;
		} else if (lua_getfield(L, r, "action") != LUA_TNIL) {
			lua_pop(L, 1);
			ok = read_decision(L, r, p, v, why, sizeof(why));
		} else {
			lua_pop(L, 1);
			lua_Integer n = luaL_len(L, r);
			for (lua_Integer i = 1; ok && i <= n; i++) {
				lua_rawgeti(L, r, i);
				ok = lua_istable(L, -1) && read_decision(L, lua_gettop(L), p, v, why, sizeof(why));
				if (!ok && !why[0])
					snprintf(why, sizeof(why), "returned a list holding something that is not a decision");
				lua_pop(L, 1);
			}
		}
		if (!ok) {
			char what[600];
			snprintf(what, sizeof(what), "%s: %s %s", p->file, name, why);
			lua_settop(L, base);
			policy_failed(e, p, what, v);
			return;
		}
	}
	lua_settop(L, base);
}

void policy_check_statement(struct policy_engine *e, const struct stmt_info *st,
			    const struct policy_session *s, struct verdict *v)
{
	if (!e)
		return;
	lua_State *L = e->L;
	e->current = s;
	for (int i = 0; i < e->npolicies; i++) {
		struct policy *p = &e->policies[i];
		if (!p->has_statement)
			continue;
		push_stmt(L, st);
		push_session(L, s);
		call_hook(e, p, "on_statement", 2, v, true);
	}
	e->current = NULL;
}

void policy_decide(struct policy_engine *e, const char *sql, const struct stmt_info *st,
		   const struct policy_session *s, struct verdict *v)
{
	if (!e)
		return;
	policy_check_statement(e, st, s, v);
	char reason[300];
	if (v->kind == VERDICT_DENY && v->overridable &&
	    stmt_find_override(sql, st->offset, st->offset + st->length, v->rule, reason, sizeof(reason))) {
		char w[700];
		snprintf(w, sizeof(w), "rule %s overridden inline: %s", v->rule, reason);
		verdict_add_warning(v, v->rule, w, NULL);
		snprintf(w, sizeof(w), "%s (%s)", v->rule, reason);
		v->overridden = strdup(w);
		v->kind = VERDICT_ALLOW;
	}
}

void policy_check_connect(struct policy_engine *e, const struct policy_session *s, struct verdict *v)
{
	if (!e)
		return;
	e->current = s;
	for (int i = 0; i < e->npolicies; i++) {
		struct policy *p = &e->policies[i];
		if (!p->has_connect)
			continue;
		push_session(e->L, s);
		call_hook(e, p, "on_connect", 1, v, true);
	}
	e->current = NULL;
}

static void push_holders(lua_State *L, const struct policy_holder *h, int n, const char *wait_key)
{
	lua_createtable(L, n, 0);
	for (int i = 0; i < n; i++) {
		lua_createtable(L, 0, 6);
		set_int(L, "pid", h[i].pid);
		set_str(L, "application_name", h[i].application_name);
		set_str(L, "state", h[i].state);
		lua_pushnumber(L, h[i].xact_age);
		lua_setfield(L, -2, wait_key);
		set_str(L, "query", h[i].query);
		lua_rawseti(L, -2, i + 1);
	}
}

void policy_check_end(struct policy_engine *e, const struct policy_session *s, struct verdict *v)
{
	if (!e)
		return;
	e->current = s;
	for (int i = 0; i < e->npolicies; i++) {
		struct policy *p = &e->policies[i];
		if (!p->has_end)
			continue;
		push_session(e->L, s);
		call_hook(e, p, "on_end", 1, v, true);
	}
	e->current = NULL;
}

bool policy_check_lock_wait(struct policy_engine *e, const struct policy_lock_wait *w,
			    const struct policy_session *s)
{
	if (!e)
		return false;
	struct verdict v;
	verdict_init(&v);
	e->current = s;
	for (int i = 0; i < e->npolicies; i++) {
		struct policy *p = &e->policies[i];
		if (!p->has_lock_wait)
			continue;
		lua_createtable(e->L, 0, 6);
		set_str(e->L, "relation", w->relation);
		set_str(e->L, "mode", w->mode);
		lua_pushnumber(e->L, w->waited);
		lua_setfield(e->L, -2, "waited");
		push_holders(e->L, w->blockers, w->nblockers, "xact_age");
		lua_setfield(e->L, -2, "blockers");
		push_holders(e->L, w->queued, w->nqueued, "waited");
		lua_setfield(e->L, -2, "queued");
		push_session(e->L, s);
		call_hook(e, p, "on_lock_wait", 2, &v, true);
	}
	e->current = NULL;
	bool cancel = v.cancel;
	verdict_free(&v);
	return cancel;
}

void policy_notify_commit(struct policy_engine *e, const struct policy_session *s)
{
	if (!e)
		return;
	e->current = s;
	for (int i = 0; i < e->npolicies; i++) {
		struct policy *p = &e->policies[i];
		if (!p->has_commit)
			continue;
		struct verdict ignored;
		verdict_init(&ignored);
		lua_createtable(e->L, 0, 1);
		push_session(e->L, s);
		lua_getfield(e->L, -1, "statements");
		lua_setfield(e->L, -3, "statements");
		call_hook(e, p, "on_commit", 2, &ignored, false);
		verdict_free(&ignored);
	}
	e->current = NULL;
}

/* engine — see engine.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1            /* memmem: a linear-time plain search */
#endif
#include "policies/engine.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <lauxlib.h>
#include <limits.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policies/override.h"
#include "protocol/pgw.h"
#include "policies/tree.h"

#define HOOK_EVERY 1000          /* instructions between budget checks */
#define POLICY_FILE_MAX (1 << 20)
#define CLOCK_EVERY_BYTES (1u << 20)    /* bytes a call allocates between two looks at the clock */
#define CLOCK_EVERY_STEPS 4096          /* steps of a library loop between two looks at the clock */
#define CLOSE_DEPTH_MAX 40       /* coroutine.close inside __close inside coroutine.close … */
#define ANSWER_MAX 1000          /* decisions in one answer */
#define TEXT_MAX 1000            /* bytes kept of a decision's message, detail or hint */
#define RULE_MAX 100             /* bytes kept of a rule id */
#define PRINT_MAX 2000           /* bytes of one print() line */

/* Why the call in progress was stopped. */
enum stop_reason { STOP_NONE, STOP_BUDGET, STOP_TIME, STOP_MEMORY };

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
	long time_limit_ms;
	size_t mem_used, mem_limit;
	/* The call in progress (guarded_call): the budget, the clock and the cap apply. */
	bool in_call;
	long steps;                  /* instructions used by the current call */
	int64_t deadline_ms;         /* CLOCK_MONOTONIC */
	size_t alloc_since_clock;
	struct {                     /* the allocation last refused for the cap, if no other came since */
		bool pending;
		void *ptr;
		size_t osize, nsize;
	} refused;
	enum stop_reason stopped;    /* set once; from then on the call can only fail */
	char stop_msg[512];          /* "file:line: instruction budget exceeded …" */
	int close_depth;
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

/* ---------------------------------------------------------------- budget, clock and memory cap */

static struct policy_engine *engine_of(lua_State *L)
{
	return *(struct policy_engine **)lua_getextraspace(L);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The allocator of the policies' lua_State. While a policy call runs it enforces the memory
 * cap, and it is one of the places that notice a passed deadline: building a big string is
 * one instruction, so counting instructions alone would not see it. When it refuses an
 * allocation for the cap, Lua collects garbage and asks again for the same block; refused
 * a second time, the memory is really in use and the call is stopped: Lua raises a memory
 * error, and every further allocation of the call is refused, so nothing the policy tries
 * after that (catching the error in a coroutine, say) gets anywhere. ddlguard's own work
 * between calls (loading files, building environments) is not capped: it is bounded by
 * what ddlguard itself does.
 */
static void *l_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct policy_engine *e = ud;
	size_t old = ptr ? osize : 0;
	if (nsize == 0) {
		free(ptr);
		e->mem_used -= old;
		return NULL;
	}
	if (nsize > old && e->in_call) {
		size_t grow = nsize - old;
		if (e->stopped)
			return NULL;
		bool retry = e->refused.pending && e->refused.ptr == ptr && e->refused.osize == osize &&
			     e->refused.nsize == nsize;
		/* Another request after a refusal: that one was not retried (a luaL_Buffer, say,
		 * raises at once), so it was final. */
		if (e->refused.pending && !retry) {
			e->stopped = STOP_MEMORY;
			return NULL;
		}
		if (e->mem_used + grow > e->mem_limit) {
			if (retry) {
				e->stopped = STOP_MEMORY;
				return NULL;
			}
			e->refused.pending = true;
			e->refused.ptr = ptr;
			e->refused.osize = osize;
			e->refused.nsize = nsize;
			return NULL;
		}
		e->refused.pending = false;
		e->alloc_since_clock += grow;
		if (e->alloc_since_clock >= CLOCK_EVERY_BYTES) {
			e->alloc_since_clock = 0;
			if (now_ms() >= e->deadline_ms) {
				e->stopped = STOP_TIME;
				return NULL;
			}
		}
	}
	void *p = realloc(ptr, nsize);
	if (!p)
		return NULL;
	e->mem_used = e->mem_used - old + nsize;
	return p;
}

/* "file:line: " of the innermost Lua function running on L, or "" (never allocates). */
static void where(lua_State *L, char *buf, size_t len)
{
	lua_Debug ar;
	buf[0] = 0;
	for (int level = 0; lua_getstack(L, level, &ar); level++) {
		if (!lua_getinfo(L, "Sl", &ar))
			return;
		if (ar.currentline > 0) {
			snprintf(buf, len, "%s:%d: ", ar.short_src, ar.currentline);
			return;
		}
	}
}

static void stop_text(const struct policy_engine *e, char *buf, size_t len)
{
	switch (e->stopped) {
	case STOP_BUDGET:
		snprintf(buf, len, "instruction budget exceeded (%ld instructions, policy_instruction_budget)", e->budget);
		break;
	case STOP_TIME:
		snprintf(buf, len, "time limit exceeded (%ld ms, policy_time_limit)", e->time_limit_ms);
		break;
	case STOP_MEMORY:
		snprintf(buf, len, "memory limit exceeded (%zu MB, policy_memory_limit)", e->mem_limit >> 20);
		break;
	case STOP_NONE:
		buf[0] = 0;
		break;
	}
}

/* True once the call in progress must stop: budget spent or deadline passed (sticky). */
static bool must_stop(struct policy_engine *e)
{
	if (!e->in_call)
		return false;
	if (e->stopped == STOP_NONE) {
		if (e->steps > e->budget)
			e->stopped = STOP_BUDGET;
		else if (now_ms() >= e->deadline_ms)
			e->stopped = STOP_TIME;
	}
	return e->stopped != STOP_NONE;
}

/* Raise the stop as a Lua error, remembering where the policy was when it happened. */
static int raise_stop(lua_State *L)
{
	struct policy_engine *e = engine_of(L);
	if (!e->stop_msg[0]) {
		char at[256], what[200];
		where(L, at, sizeof(at));
		stop_text(e, what, sizeof(what));
		snprintf(e->stop_msg, sizeof(e->stop_msg), "%s%s", at, what);
	}
	/* Pushing the message may itself fail (nothing is allocated for a stopped call):
	 * that raises a memory error instead, which ends the call just the same. */
	lua_pushstring(L, e->stop_msg);
	return lua_error(L);
}

/*
 * Count and call hook. Every HOOK_EVERY instructions it charges the budget; before every
 * function call (Lua or C) it looks at the clock, so a policy that spends its time in C
 * library functions rather than in instructions is stopped too. Once stopped, it raises
 * again at every chance: a policy that catches the error gets at most a few instructions.
 */
static void budget_hook(lua_State *L, lua_Debug *ar)
{
	struct policy_engine *e = engine_of(L);
	if (ar->event == LUA_HOOKCOUNT)
		e->steps += HOOK_EVERY;
	if (must_stop(e))
		raise_stop(L);
}

/* For C loops a policy can make arbitrarily long: a look at the clock every few thousand steps. */
static void loop_step(lua_State *L, unsigned long *n)
{
	if (++*n % CLOCK_EVERY_STEPS == 0 && must_stop(engine_of(L)))
		raise_stop(L);
}

/* ---------------------------------------------------------------- the sandbox's own functions */

/* pcall/xpcall for policies: a stopped call (budget, clock, memory) cannot be caught and ignored. */
static int l_safe_pcall(lua_State *L)
{
	struct policy_engine *e = engine_of(L);
	luaL_checkany(L, 1);
	int n = lua_gettop(L);
	int st = lua_pcall(L, n - 1, LUA_MULTRET, 0);
	if (st != LUA_OK && (e->stopped || st == LUA_ERRMEM))
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
	if (st != LUA_OK && (e->stopped || st == LUA_ERRMEM))
		return lua_error(L);
	lua_pushboolean(L, st == LUA_OK);
	lua_replace(L, 1);
	return lua_gettop(L);
}

/*
 * load() for policies: text only (a string, not a reader function that could hand over a
 * chunk piece by piece), and the caller's environment unless one is given. Precompiled
 * chunks are refused whatever the mode asks: Lua does not verify bytecode, and crafted
 * bytecode reads and writes memory at will.
 */
static int l_safe_load(lua_State *L)
{
	size_t len;
	const char *chunk = luaL_checklstring(L, 1, &len);
	const char *name = luaL_optstring(L, 2, "=(load)");
	const char *mode = luaL_optstring(L, 3, "bt");
	int has_env = lua_gettop(L) >= 4;
	if (!strchr(mode, 't')) {
		luaL_pushfail(L);
		lua_pushfstring(L, "attempt to load a chunk with mode '%s' (policies load text chunks only)", mode);
		return 2;
	}
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

/*
 * setmetatable() without finalizers. Lua runs __gc metamethods with hooks switched off, at
 * whatever moment the collector picks (in another policy's call, or outside any call), so a
 * finalizer would escape the budget, the clock and the policy's own error handling. The
 * rest is Lua's setmetatable.
 */
static int l_safe_setmetatable(lua_State *L)
{
	int t = lua_type(L, 2);
	luaL_checktype(L, 1, LUA_TTABLE);
	luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
	if (t == LUA_TTABLE) {
		lua_pushliteral(L, "__gc");
		if (lua_rawget(L, 2) != LUA_TNIL)
			return luaL_error(L, "setmetatable: __gc is not available to policies "
					  "(finalizers would run outside the instruction budget)");
		lua_pop(L, 1);
	}
	if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
		return luaL_error(L, "cannot change a protected metatable");
	lua_settop(L, 2);
	lua_setmetatable(L, 1);
	return 1;
}

/*
 * coroutine.create and coroutine.wrap: each thread keeps its own instruction counter, and a
 * coroutine that ends before its first HOOK_EVERY instructions is never counted; creating one
 * pays for them in advance, so a loop of short coroutines cannot run past the budget.
 */
static int l_coroutine_new(lua_State *L)
{
	struct policy_engine *e = engine_of(L);
	e->steps += HOOK_EVERY;
	if (must_stop(e))
		return raise_stop(L);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, 1);
	return 1;
}

/*
 * coroutine.close: Lua 5.4.4 runs the closed coroutine's __close handlers without counting
 * the C levels of the caller, so a chain of coroutines, each closing the previous one from
 * a __close handler, overflows the C stack and crashes the process (fixed in Lua 5.4.5).
 */
static int l_coroutine_close(lua_State *L)
{
	struct policy_engine *e = engine_of(L);
	if (e->close_depth >= CLOSE_DEPTH_MAX)
		return luaL_error(L, "coroutine.close: nested more than %d deep", CLOSE_DEPTH_MAX);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	e->close_depth++;
	int st = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
	e->close_depth--;
	if (st != LUA_OK)
		return lua_error(L);
	return lua_gettop(L);
}

/* A table argument, or something with a metatable that may index it like one. */
static void check_indexable(lua_State *L, int arg)
{
	if (lua_type(L, arg) == LUA_TTABLE)
		return;
	if (!lua_getmetatable(L, arg))
		luaL_typeerror(L, arg, "table");
	lua_pop(L, 1);
}

/*
 * table.insert, table.remove and table.move, as in Lua's table library, except that their
 * loops look at the clock: their length comes from the policy (an __len metamethod, or the
 * arguments of move), so one call could otherwise shift elements for hours.
 */
static int l_table_insert(lua_State *L)
{
	check_indexable(L, 1);
	lua_Integer end = luaL_len(L, 1);
	if (end == LUA_MAXINTEGER)
		return luaL_error(L, "table.insert: table too long");
	end++;   /* the first empty slot */
	lua_Integer pos;
	unsigned long n = 0;
	switch (lua_gettop(L)) {
	case 2:
		pos = end;
		break;
	case 3:
		pos = luaL_checkinteger(L, 2);
		luaL_argcheck(L, pos >= 1 && pos <= end, 2, "position out of bounds");
		for (lua_Integer i = end; i > pos; i--) {
			loop_step(L, &n);
			lua_geti(L, 1, i - 1);
			lua_seti(L, 1, i);
		}
		break;
	default:
		return luaL_error(L, "wrong number of arguments to 'insert'");
	}
	lua_seti(L, 1, pos);
	return 0;
}

static int l_table_remove(lua_State *L)
{
	check_indexable(L, 1);
	lua_Integer size = luaL_len(L, 1);
	lua_Integer pos = luaL_optinteger(L, 2, size);
	unsigned long n = 0;
	if (pos != size)
		luaL_argcheck(L, size < LUA_MAXINTEGER && pos >= 1 && pos <= size + 1, 2, "position out of bounds");
	lua_geti(L, 1, pos);
	for (; pos < size; pos++) {
		loop_step(L, &n);
		lua_geti(L, 1, pos + 1);
		lua_seti(L, 1, pos);
	}
	lua_pushnil(L);
	lua_seti(L, 1, pos);
	return 1;
}

static int l_table_move(lua_State *L)
{
	lua_Integer from = luaL_checkinteger(L, 2);
	lua_Integer last = luaL_checkinteger(L, 3);
	lua_Integer to = luaL_checkinteger(L, 4);
	int dst = lua_isnoneornil(L, 5) ? 1 : 5;
	check_indexable(L, 1);
	check_indexable(L, dst);
	if (last >= from) {
		luaL_argcheck(L, from > 0 || last < LUA_MAXINTEGER + from, 3, "too many elements to move");
		lua_Integer count = last - from + 1;
		luaL_argcheck(L, to <= LUA_MAXINTEGER - count + 1, 4, "destination wrap around");
		unsigned long n = 0;
		/* Overlapping ranges in one table are copied from the end backwards. */
		bool backwards = !(to > last || to <= from || (dst != 1 && !lua_compare(L, 1, dst, LUA_OPEQ)));
		for (lua_Integer i = 0; i < count; i++) {
			lua_Integer k = backwards ? count - 1 - i : i;
			loop_step(L, &n);
			lua_geti(L, 1, from + k);
			lua_seti(L, dst, to + k);
		}
	}
	lua_pushvalue(L, dst);
	return 1;
}

/*
 * string.rep, as in Lua's string library (results up to INT_MAX bytes), but filled by
 * doubling: a few large copies instead of one per repetition, so even a result as large as
 * the memory cap is built in milliseconds.
 */
static int l_string_rep(lua_State *L)
{
	size_t len, seplen;
	const char *s = luaL_checklstring(L, 1, &len);
	lua_Integer n = luaL_checkinteger(L, 2);
	const char *sep = luaL_optlstring(L, 3, "", &seplen);
	if (n <= 0 || (len == 0 && seplen == 0)) {
		lua_pushliteral(L, "");
		return 1;
	}
	size_t unit = len + seplen;   /* one copy and the separator after it */
	if (unit < len || unit > (size_t)INT_MAX / (lua_Unsigned)n)
		return luaL_error(L, "resulting string too large");
	size_t total = (size_t)n * unit - seplen;
	/* The buffer and then the string: collect first if they would not fit otherwise
	 * (the buffer's allocation gets no collection and second try of its own). */
	struct policy_engine *e = engine_of(L);
	if (e->in_call && e->mem_used + 2 * (size_t)n * unit > e->mem_limit)
		lua_gc(L, LUA_GCCOLLECT);
	luaL_Buffer b;
	char *out = luaL_buffinitsize(L, &b, (size_t)n * unit);
	memcpy(out, s, len);
	memcpy(out + len, sep, seplen);
	size_t have = unit;            /* out[0, have) holds whole units */
	size_t want = total;           /* the last copy has no separator: it is cut off below */
	while (have < want) {
		size_t k = have < want - have ? have : want - have;
		memcpy(out + have, out, k);
		have += k;
	}
	luaL_pushresultsize(&b, total);
	return 1;
}

/*
 * ---------------------------------------------------------------- pattern matching
 *
 * string.find, match, gmatch and gsub with Lua's pattern language (the Lua 5.4 reference
 * manual, section 6.4.1), matched by a backtracking matcher that looks at the clock. Lua's
 * own matcher never returns to the interpreter while it backtracks, and a pattern such as
 * "a*a*a*a*a*a*a*a*b" against a few dozen characters backtracks for minutes: neither the
 * instruction budget nor a hook could stop it.
 */

#define PAT_CAPTURES 32
#define PAT_DEPTH 200            /* nested pattern items, like Lua's MAXCCALLS */
#define CAP_OPEN (-1)            /* capture started, not yet closed */
#define CAP_POSITION (-2)        /* a () position capture */

struct pat {
	lua_State *L;
	const char *src, *src_end;   /* the subject */
	const char *pat_end;         /* the end of the pattern */
	int depth;                   /* nesting left before "pattern too complex" */
	int ncap;
	struct {
		const char *at;
		ptrdiff_t len;           /* or CAP_OPEN, CAP_POSITION */
	} cap[PAT_CAPTURES];
	unsigned long steps;
};

static const char *pat_match(struct pat *m, const char *s, const char *p);

static void pat_init(struct pat *m, lua_State *L, const char *s, size_t ls, const char *p, size_t lp)
{
	m->L = L;
	m->src = s;
	m->src_end = s + ls;
	m->pat_end = p + lp;
	m->steps = 0;
}

static void pat_reset(struct pat *m)
{
	m->depth = PAT_DEPTH;
	m->ncap = 0;
}

static void pat_step(struct pat *m)
{
	loop_step(m->L, &m->steps);
}

/* Does character c belong to class %cl? (cl upper case: the complement.) */
static bool pat_class(int c, int cl)
{
	bool in;
	switch (tolower(cl)) {
	case 'a': in = isalpha(c); break;
	case 'c': in = iscntrl(c); break;
	case 'd': in = isdigit(c); break;
	case 'g': in = isgraph(c); break;
	case 'l': in = islower(c); break;
	case 'p': in = ispunct(c); break;
	case 's': in = isspace(c); break;
	case 'u': in = isupper(c); break;
	case 'w': in = isalnum(c); break;
	case 'x': in = isxdigit(c); break;
	default: return cl == c;   /* %. %% %( …: the character itself */
	}
	return isupper(cl) ? !in : in;
}

/* The end of the single-character class starting at p: x, %x or [set]. */
static const char *pat_item_end(struct pat *m, const char *p)
{
	char c = *p++;
	if (c == '%') {
		if (p >= m->pat_end)
			luaL_error(m->L, "malformed pattern (ends with '%%')");
		return p + 1;
	}
	if (c != '[')
		return p;
	if (p < m->pat_end && *p == '^')
		p++;
	/* The first character of a set is part of it even when it is ']'. */
	for (;;) {
		if (p >= m->pat_end)
			luaL_error(m->L, "malformed pattern (missing ']')");
		if (*p++ == '%' && p < m->pat_end)
			p++;
		if (p < m->pat_end && *p == ']')
			return p + 1;
	}
}

/* Does c belong to the set [ … ] from p (the '[') to close (its ']')? */
static bool pat_set(int c, const char *p, const char *close)
{
	bool want = true;
	p++;
	if (*p == '^') {
		want = false;
		p++;
	}
	while (p < close) {
		if (*p == '%' && p + 1 < close) {
			if (pat_class(c, (unsigned char)p[1]))
				return want;
			p += 2;
		} else if (p + 2 < close && p[1] == '-') {
			if ((unsigned char)p[0] <= c && c <= (unsigned char)p[2])
				return want;
			p += 3;
		} else {
			if ((unsigned char)*p == c)
				return want;
			p++;
		}
	}
	return !want;
}

/* Does the subject character at s match the class from p to end? */
static bool pat_single(struct pat *m, const char *s, const char *p, const char *end)
{
	if (s >= m->src_end)
		return false;
	pat_step(m);
	int c = (unsigned char)*s;
	switch (*p) {
	case '.':
		return true;
	case '%':
		return pat_class(c, (unsigned char)p[1]);
	case '[':
		return pat_set(c, p, end - 1);
	default:
		return (unsigned char)*p == c;
	}
}

static const char *pat_balance(struct pat *m, const char *s, const char *p)
{
	if (p + 1 >= m->pat_end)
		luaL_error(m->L, "malformed pattern (missing arguments to '%%b')");
	if (s >= m->src_end || *s != p[0])
		return NULL;
	int open = 1;
	while (++s < m->src_end) {
		pat_step(m);
		if (*s == p[1]) {
			if (--open == 0)
				return s + 1;
		} else if (*s == p[0])
			open++;
	}
	return NULL;
}

/* item* or item+ (after its first match): as many as possible, then fewer. */
static const char *pat_greedy(struct pat *m, const char *s, const char *p, const char *end)
{
	ptrdiff_t n = 0;
	while (pat_single(m, s + n, p, end))
		n++;
	for (; n >= 0; n--) {
		const char *r = pat_match(m, s + n, end + 1);
		if (r)
			return r;
	}
	return NULL;
}

/* item-: as few as possible, then more. */
static const char *pat_lazy(struct pat *m, const char *s, const char *p, const char *end)
{
	for (;;) {
		const char *r = pat_match(m, s, end + 1);
		if (r)
			return r;
		if (!pat_single(m, s, p, end))
			return NULL;
		s++;
	}
}

static const char *pat_open(struct pat *m, const char *s, const char *p, ptrdiff_t what)
{
	if (m->ncap >= PAT_CAPTURES)
		luaL_error(m->L, "too many captures");
	m->cap[m->ncap].at = s;
	m->cap[m->ncap].len = what;
	m->ncap++;
	const char *r = pat_match(m, s, p);
	if (!r)
		m->ncap--;
	return r;
}

static const char *pat_close(struct pat *m, const char *s, const char *p)
{
	int l = m->ncap - 1;
	while (l >= 0 && m->cap[l].len != CAP_OPEN)
		l--;
	if (l < 0)
		luaL_error(m->L, "invalid pattern capture");
	m->cap[l].len = s - m->cap[l].at;
	const char *r = pat_match(m, s, p);
	if (!r)
		m->cap[l].len = CAP_OPEN;
	return r;
}

/* %1 … %9 in a pattern: the same text as that capture. */
static const char *pat_backref(struct pat *m, const char *s, int digit)
{
	int l = digit - '1';
	if (l < 0 || l >= m->ncap || m->cap[l].len == CAP_OPEN)
		luaL_error(m->L, "invalid capture index %%%d", l + 1);
	if (m->cap[l].len == CAP_POSITION)
		return NULL;
	size_t len = (size_t)m->cap[l].len;
	for (size_t i = 0; i < len; i += CLOCK_EVERY_STEPS)
		pat_step(m);
	if ((size_t)(m->src_end - s) >= len && memcmp(m->cap[l].at, s, len) == 0)
		return s + len;
	return NULL;
}

/* Match the pattern from p against the subject from s: the end of the match, or NULL. */
static const char *pat_match(struct pat *m, const char *s, const char *p)
{
	if (m->depth-- == 0)
		luaL_error(m->L, "pattern too complex");
	const char *r = NULL;
	for (;;) {
		pat_step(m);
		if (p == m->pat_end) {
			r = s;
			break;
		}
		if (*p == '(') {
			if (p + 1 < m->pat_end && p[1] == ')')
				r = pat_open(m, s, p + 2, CAP_POSITION);
			else
				r = pat_open(m, s, p + 1, CAP_OPEN);
			break;
		}
		if (*p == ')') {
			r = pat_close(m, s, p + 1);
			break;
		}
		if (*p == '$' && p + 1 == m->pat_end) {
			r = s == m->src_end ? s : NULL;
			break;
		}
		if (*p == '%' && p + 1 < m->pat_end && p[1] == 'b') {
			s = pat_balance(m, s, p + 2);
			if (!s)
				break;
			p += 4;
			continue;
		}
		if (*p == '%' && p + 1 < m->pat_end && p[1] == 'f') {
			p += 2;
			if (p >= m->pat_end || *p != '[')
				luaL_error(m->L, "missing '[' after '%%f' in pattern");
			const char *end = pat_item_end(m, p);
			int before = s == m->src ? 0 : (unsigned char)s[-1];
			int here = s < m->src_end ? (unsigned char)*s : 0;
			if (pat_set(before, p, end - 1) || !pat_set(here, p, end - 1))
				break;
			p = end;
			continue;
		}
		if (*p == '%' && p + 1 < m->pat_end && isdigit((unsigned char)p[1])) {
			s = pat_backref(m, s, (unsigned char)p[1]);
			if (!s)
				break;
			p += 2;
			continue;
		}
		/* A single-character class, maybe with a quantifier after it. */
		const char *end = pat_item_end(m, p);
		char q = end < m->pat_end ? *end : 0;
		if (!pat_single(m, s, p, end)) {
			if (q == '*' || q == '?' || q == '-') {
				p = end + 1;   /* zero of them is fine */
				continue;
			}
			break;
		}
		if (q == '?') {
			r = pat_match(m, s + 1, end + 1);
			if (r)
				break;
			p = end + 1;
			continue;
		}
		if (q == '+') {
			r = pat_greedy(m, s + 1, p, end);
			break;
		}
		if (q == '*') {
			r = pat_greedy(m, s, p, end);
			break;
		}
		if (q == '-') {
			r = pat_lazy(m, s, p, end);
			break;
		}
		s++;
		p = end;
	}
	m->depth++;
	return r;
}

/* Push capture i of a match from s to e (the whole match when the pattern has none). */
static void pat_push_capture(struct pat *m, int i, const char *s, const char *e)
{
	if (i >= m->ncap) {
		if (i != 0)
			luaL_error(m->L, "invalid capture index %%%d", i + 1);
		lua_pushlstring(m->L, s, (size_t)(e - s));
		return;
	}
	if (m->cap[i].len == CAP_OPEN)
		luaL_error(m->L, "unfinished capture");
	if (m->cap[i].len == CAP_POSITION)
		lua_pushinteger(m->L, (lua_Integer)(m->cap[i].at - m->src) + 1);
	else
		lua_pushlstring(m->L, m->cap[i].at, (size_t)m->cap[i].len);
}

/* Push every capture; with none, the whole match (unless s is NULL: string.find). */
static int pat_push_captures(struct pat *m, const char *s, const char *e)
{
	int n = (m->ncap == 0 && s) ? 1 : m->ncap;
	luaL_checkstack(m->L, n, "too many captures");
	for (int i = 0; i < n; i++)
		pat_push_capture(m, i, s, e);
	return n;
}

/* A 1-based, possibly negative start position as a 0-based offset (may be past the end). */
static size_t pat_start(lua_Integer pos, size_t len)
{
	if (pos > 0)
		return (size_t)pos - 1;
	if (pos == 0 || pos < -(lua_Integer)len)
		return 0;
	return len + (size_t)pos;
}

static bool pat_has_specials(const char *p, size_t lp)
{
	for (size_t i = 0; i < lp; i++)
		if (p[i] && strchr("^$*+?.([%-", p[i]))
			return true;
	return false;
}

static int pat_find(lua_State *L, bool find)
{
	size_t ls, lp;
	const char *s = luaL_checklstring(L, 1, &ls);
	const char *p = luaL_checklstring(L, 2, &lp);
	size_t init = pat_start(luaL_optinteger(L, 3, 1), ls);
	if (init > ls) {
		luaL_pushfail(L);
		return 1;
	}
	if (find && (lua_toboolean(L, 4) || !pat_has_specials(p, lp))) {
		const char *hit = lp == 0 ? s + init : memmem(s + init, ls - init, p, lp);
		if (hit) {
			lua_pushinteger(L, (lua_Integer)(hit - s) + 1);
			lua_pushinteger(L, (lua_Integer)(hit - s + lp));
			return 2;
		}
		luaL_pushfail(L);
		return 1;
	}
	struct pat m;
	bool anchor = lp > 0 && *p == '^';
	if (anchor) {
		p++;
		lp--;
	}
	pat_init(&m, L, s, ls, p, lp);
	const char *from = s + init;
	do {
		pat_reset(&m);
		const char *e = pat_match(&m, from, p);
		if (e) {
			if (!find)
				return pat_push_captures(&m, from, e);
			lua_pushinteger(L, (lua_Integer)(from - s) + 1);
			lua_pushinteger(L, (lua_Integer)(e - s));
			return pat_push_captures(&m, NULL, NULL) + 2;
		}
	} while (from++ < m.src_end && !anchor);
	luaL_pushfail(L);
	return 1;
}

static int l_string_find(lua_State *L)
{
	return pat_find(L, true);
}

static int l_string_match(lua_State *L)
{
	return pat_find(L, false);
}

/* gmatch's iterator state (a userdata upvalue beside the subject and the pattern). */
struct gmatch_state {
	size_t pos;                  /* where the next search starts */
	size_t last;                 /* end of the last match, SIZE_MAX before the first */
};

static int l_gmatch_next(lua_State *L)
{
	size_t ls, lp;
	const char *s = lua_tolstring(L, lua_upvalueindex(1), &ls);
	const char *p = lua_tolstring(L, lua_upvalueindex(2), &lp);
	struct gmatch_state *g = lua_touserdata(L, lua_upvalueindex(3));
	struct pat m;
	pat_init(&m, L, s, ls, p, lp);
	for (size_t at = g->pos; at <= ls; at++) {
		pat_reset(&m);
		const char *e = pat_match(&m, s + at, p);
		/* An empty match right where the previous match ended does not count. */
		if (e && (size_t)(e - s) != g->last) {
			g->pos = g->last = (size_t)(e - s);
			return pat_push_captures(&m, s + at, e);
		}
	}
	g->pos = ls + 1;
	return 0;
}

static int l_string_gmatch(lua_State *L)
{
	size_t ls;
	luaL_checklstring(L, 1, &ls);
	luaL_checkstring(L, 2);
	size_t init = pat_start(luaL_optinteger(L, 3, 1), ls);
	lua_settop(L, 2);
	struct gmatch_state *g = lua_newuserdatauv(L, sizeof(*g), 0);
	g->pos = init > ls ? ls + 1 : init;
	g->last = SIZE_MAX;
	lua_pushcclosure(L, l_gmatch_next, 3);
	return 1;
}

/* gsub: append the replacement for the match s..e to b. False when the match is kept as is. */
static bool gsub_add(struct pat *m, luaL_Buffer *b, const char *s, const char *e, int how)
{
	lua_State *L = m->L;
	if (how == LUA_TSTRING || how == LUA_TNUMBER) {
		size_t len;
		const char *r = lua_tolstring(L, 3, &len);
		for (size_t i = 0; i < len; i++) {
			if (r[i] != '%') {
				luaL_addchar(b, r[i]);
				continue;
			}
			i++;
			if (i < len && r[i] == '%')
				luaL_addchar(b, '%');
			else if (i < len && r[i] == '0')
				luaL_addlstring(b, s, (size_t)(e - s));
			else if (i < len && isdigit((unsigned char)r[i])) {
				pat_push_capture(m, r[i] - '1', s, e);
				luaL_addvalue(b);      /* a position capture is a number: converted */
			} else
				luaL_error(L, "invalid use of '%%' in replacement string");
		}
		return true;
	}
	if (how == LUA_TFUNCTION) {
		lua_pushvalue(L, 3);
		int n = pat_push_captures(m, s, e);
		lua_call(L, n, 1);
	} else {
		pat_push_capture(m, 0, s, e);
		lua_gettable(L, 3);
	}
	if (!lua_toboolean(L, -1)) {
		lua_pop(L, 1);
		luaL_addlstring(b, s, (size_t)(e - s));
		return false;
	}
	if (!lua_isstring(L, -1))
		return luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
	luaL_addvalue(b);
	return true;
}

static int l_string_gsub(lua_State *L)
{
	size_t ls, lp;
	const char *src = luaL_checklstring(L, 1, &ls);
	const char *p = luaL_checklstring(L, 2, &lp);
	int how = lua_type(L, 3);
	lua_Integer max = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
	luaL_argexpected(L, how == LUA_TNUMBER || how == LUA_TSTRING || how == LUA_TFUNCTION ||
			 how == LUA_TTABLE, 3, "string/function/table");
	bool anchor = lp > 0 && *p == '^';
	if (anchor) {
		p++;
		lp--;
	}
	struct pat m;
	pat_init(&m, L, src, ls, p, lp);
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	const char *s = src, *last = NULL;
	lua_Integer n = 0;
	bool changed = false;
	while (n < max) {
		pat_reset(&m);
		const char *e = pat_match(&m, s, p);
		if (e && e != last) {
			n++;
			changed |= gsub_add(&m, &b, s, e, how);
			s = last = e;
		} else if (s < m.src_end)
			luaL_addchar(&b, *s++);
		else
			break;
		if (anchor)
			break;
	}
	if (!changed)
		lua_pushvalue(L, 1);
	else {
		luaL_addlstring(&b, s, (size_t)(m.src_end - s));
		luaL_pushresult(&b);
	}
	lua_pushinteger(L, n);
	return 2;
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

/*
 * The string library as policies see it, also through string methods ("x"):rep(…): the
 * shared table that the string metatable's __index points to is edited once, so no policy
 * can reach Lua's own string.dump, rep or matcher.
 */
static void install_string_library(lua_State *L)
{
	static const luaL_Reg own[] = {
		{ "rep", l_string_rep },
		{ "find", l_string_find },
		{ "match", l_string_match },
		{ "gmatch", l_string_gmatch },
		{ "gsub", l_string_gsub },
		{ NULL, NULL },
	};
	lua_getglobal(L, "string");
	luaL_setfuncs(L, own, 0);
	lua_pushnil(L);
	lua_setfield(L, -2, "dump");
	lua_pop(L, 1);
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

/*
 * Copy text from a policy into a log line or a protocol field: at most cap - 1 bytes, cut
 * on a character boundary; bytes that are not UTF-8 become '?'; control characters other
 * than newline and tab become a space, and with one_line newline and carriage return become
 * \n and \r (a log line must stay one line: statement text a policy prints could otherwise
 * forge log lines).
 */
static void clean_text(const char *s, size_t len, char *out, size_t cap, bool one_line)
{
	size_t o = 0;
	for (size_t i = 0; i < len && o + 1 < cap;) {
		unsigned char c = (unsigned char)s[i];
		size_t n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 :
			   c >= 0xf0 && c <= 0xf4 ? 4 : 0;
		bool ok = n > 0 && i + n <= len;
		for (size_t k = 1; ok && k < n; k++)
			ok = ((unsigned char)s[i + k] & 0xc0) == 0x80;
		/* No overlong forms, surrogates or code points above U+10FFFF. */
		if (ok && n == 3)
			ok = !(c == 0xe0 && (unsigned char)s[i + 1] < 0xa0) && !(c == 0xed && (unsigned char)s[i + 1] > 0x9f);
		if (ok && n == 4)
			ok = !(c == 0xf0 && (unsigned char)s[i + 1] < 0x90) && !(c == 0xf4 && (unsigned char)s[i + 1] > 0x8f);
		if (!ok) {
			out[o++] = '?';
			i++;
			continue;
		}
		if (n == 1 && (c < 0x20 || c == 0x7f)) {
			if (one_line && (c == '\n' || c == '\r')) {
				if (o + 3 > cap)
					break;
				out[o++] = '\\';
				out[o++] = c == '\n' ? 'n' : 'r';
			} else
				out[o++] = (c == '\n' || c == '\t') ? (char)c : ' ';
			i++;
			continue;
		}
		if (o + n >= cap)
			break;
		memcpy(out + o, s + i, n);
		o += n;
		i += n;
	}
	out[o] = 0;
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
	size_t len;
	const char *text = lua_tolstring(L, -1, &len);
	char line[PRINT_MAX];
	clean_text(text, len, line, sizeof(line), true);
	fprintf(stderr, "policy %s: %s%s\n", lua_tostring(L, lua_upvalueindex(1)), line,
		strlen(line) < len ? " …" : "");
	return 0;
}

/* Build a fresh environment table for policy `name`; leaves it on the stack. */
static bool make_env(struct policy_engine *e, const char *name, char *err, size_t errlen)
{
	lua_State *L = e->L;
	lua_newtable(L);
	int env = lua_gettop(L);
	static const char *const base[] = { "assert", "error", "ipairs", "next", "pairs", "rawequal",
					    "rawget", "rawlen", "rawset", "select",
					    "tonumber", "tostring", "type", "_VERSION", NULL };
	for (const char *const *n = base; *n; n++) {
		lua_getglobal(L, *n);
		lua_setfield(L, env, *n);
	}
	static const char *const string_skip[] = { "dump", NULL };
	copy_table(L, "string", string_skip);
	lua_setfield(L, env, "string");
	copy_table(L, "table", NULL);
	static const luaL_Reg table_own[] = {
		{ "insert", l_table_insert },
		{ "remove", l_table_remove },
		{ "move", l_table_move },
		{ NULL, NULL },
	};
	luaL_setfuncs(L, table_own, 0);
	lua_setfield(L, env, "table");
	copy_table(L, "math", NULL);
	lua_setfield(L, env, "math");
	copy_table(L, "utf8", NULL);
	lua_setfield(L, env, "utf8");
	copy_table(L, "coroutine", NULL);
	static const char *const co_new[] = { "create", "wrap", NULL };
	for (const char *const *n = co_new; *n; n++) {
		lua_getfield(L, -1, *n);
		lua_pushcclosure(L, l_coroutine_new, 1);
		lua_setfield(L, -2, *n);
	}
	lua_getfield(L, -1, "close");
	lua_pushcclosure(L, l_coroutine_close, 1);
	lua_setfield(L, -2, "close");
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
	lua_pushcfunction(L, l_safe_setmetatable);
	lua_setfield(L, env, "setmetatable");
	lua_pushvalue(L, env);
	lua_pushcclosure(L, l_safe_load, 1);
	lua_setfield(L, env, "load");
	lua_pushstring(L, name);
	lua_pushcclosure(L, l_log, 1);
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

/* ---------------------------------------------------------------- protected calls */

/*
 * Message handler of every call into a policy: keeps string errors (Lua has put "file:line:"
 * in front), and describes any other error object by its type and where it was raised. It
 * never calls __tostring: that is the policy's code too, and it may fail or loop.
 */
static int l_msgh(lua_State *L)
{
	if (lua_type(L, 1) == LUA_TSTRING)
		return 1;
	char at[256];
	where(L, at, sizeof(at));
	if (lua_type(L, 1) == LUA_TNUMBER)
		lua_pushfstring(L, "%s%s", at, lua_tostring(L, 1));
	else
		lua_pushfstring(L, "%s(error object is a %s value)", at, luaL_typename(L, 1));
	return 1;
}

/*
 * Run body as a protected call with the budget, the clock and the memory cap: body receives
 * the nargs values on top of the stack and ud as a light userdata after them, and returns
 * nres values. Everything that touches policy code or policy data happens inside body, so no
 * error can reach Lua's panic handler (which would abort ddlguard).
 * True with the nres results on the stack; false with err set ("file:line: what") and the
 * arguments popped. A call that was stopped fails even when the policy caught the error and
 * returned normally (through a coroutine, say).
 */
static bool guarded_call(struct policy_engine *e, lua_CFunction body, void *ud, int nargs, int nres,
			 const char *file, char *err, size_t errlen)
{
	lua_State *L = e->L;
	int base = lua_gettop(L) - nargs;
	if (!lua_checkstack(L, 4)) {
		snprintf(err, errlen, "%s: out of memory", file);
		lua_settop(L, base);
		return false;
	}
	lua_pushcfunction(L, l_msgh);
	lua_insert(L, base + 1);
	lua_pushcfunction(L, body);
	lua_insert(L, base + 2);
	lua_pushlightuserdata(L, ud);
	/* What earlier calls left (the generational collector keeps it a while) is not this
	 * call's to pay for: collect it first when it could matter. A refused luaL_Buffer,
	 * unlike Lua's own allocations, does not wait for a collection. */
	if (e->mem_used > e->mem_limit / 2)
		lua_gc(L, LUA_GCCOLLECT);
	e->steps = 0;
	e->stopped = STOP_NONE;
	e->stop_msg[0] = 0;
	e->close_depth = 0;
	e->alloc_since_clock = 0;
	e->refused.pending = false;
	e->deadline_ms = now_ms() + e->time_limit_ms;
	e->in_call = true;
	lua_sethook(L, budget_hook, LUA_MASKCOUNT | LUA_MASKCALL, HOOK_EVERY);
	int st = lua_pcall(L, nargs + 1, nres, base + 1);
	lua_sethook(L, NULL, 0, 0);
	e->in_call = false;
	if (e->refused.pending && !e->stopped)
		e->stopped = STOP_MEMORY;   /* the last allocation of the call was refused */
	if (st == LUA_OK && !e->stopped) {
		lua_remove(L, base + 1);
		return true;
	}
	const char *base_name = strrchr(file, '/');
	base_name = base_name ? base_name + 1 : file;
	char what[512];
	if (e->stopped == STOP_MEMORY || (e->stopped && !e->stop_msg[0])) {
		/* Memory errors carry no position (Lua raises them without calling the handler). */
		stop_text(e, what, sizeof(what));
	} else if (e->stopped)
		snprintf(what, sizeof(what), "%s", e->stop_msg);
	else if (st == LUA_ERRMEM)
		snprintf(what, sizeof(what), "out of memory");
	else if (lua_type(L, -1) == LUA_TSTRING)
		snprintf(what, sizeof(what), "%s", lua_tostring(L, -1));
	else
		snprintf(what, sizeof(what), "error in error handling");
	/* Name the policy file when the message does not start with it. */
	size_t bl = strlen(base_name);
	if (!strncmp(what, base_name, bl) && what[bl] == ':')
		snprintf(err, errlen, "%s", what);
	else
		snprintf(err, errlen, "%s: %s", base_name, what);
	lua_settop(L, base);
	return false;
}

/* Body of a guarded call that runs a loaded chunk (argument 1) and returns its first result. */
static int l_run_chunk(lua_State *L)
{
	lua_settop(L, 1);
	lua_call(L, 0, 1);
	return 1;
}

/* The value of env[key] without metamethods (a policy may give its environment any). */
static int raw_get(lua_State *L, int t, const char *key)
{
	t = lua_absindex(L, t);
	lua_pushstring(L, key);
	return lua_rawget(L, t);
}

static bool raw_is_function(lua_State *L, int t, const char *key)
{
	bool yes = raw_get(L, t, key) == LUA_TFUNCTION;
	lua_pop(L, 1);
	return yes;
}

static bool raw_is_true(lua_State *L, int t, const char *key)
{
	raw_get(L, t, key);
	bool yes = lua_toboolean(L, -1);
	lua_pop(L, 1);
	return yes;
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

/* Load and run `path` with the environment on top of the stack; leaves its first result. */
static bool run_file(struct policy_engine *e, const char *path, char *err, size_t errlen)
{
	size_t len;
	char *src = read_all(path, &len, err, errlen);
	if (!src)
		return false;
	/* Lua keeps only the tail of long chunk names: name the file by its base name, so
	 * errors read "rule.lua:12: …". */
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
	return guarded_call(e, l_run_chunk, NULL, 1, 1, path, err, errlen);
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
	bool ok = make_env(e, p->name, err, errlen);
	int env = lua_gettop(L);
	lua_createtable(L, n, 0);
	int list = lua_gettop(L);
	for (int i = 0; ok && i < n; i++) {
		char id[256];
		snprintf(id, sizeof(id), "%s", names[i]);
		id[strlen(id) - 4] = 0;
		snprintf(path, sizeof(path), "%s/rules/%s", o->library_dir, names[i]);
		ok = make_env(e, id, err, errlen) && run_file(e, path, err, errlen);
		if (!ok)
			break;
		/* The rule's answer is read raw: a metatable on it runs no code here. */
		bool good = lua_istable(L, -1);
		if (good) {
			good = raw_get(L, -1, "id") == LUA_TSTRING && !strcmp(lua_tostring(L, -1), id);
			lua_pop(L, 1);
			good = good && raw_is_function(L, -1, "check");
		}
		if (!good) {
			snprintf(err, errlen, "%s: a rule file must return { id = \"%s\", check = function … }", path, id);
			ok = false;
			break;
		}
		/* A rule that judges writes (backfills, session_replication_role) says dml = true. */
		if (raw_is_true(L, -1, "dml"))
			e->wants_writes = true;
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
	if (!run_file(e, path, err, errlen))
		return false;
	lua_pop(L, 1);
	p->has_statement = raw_is_function(L, env, "on_statement");
	p->has_end = raw_is_function(L, env, "on_end");
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
	e->time_limit_ms = o->time_limit_ms > 0 ? o->time_limit_ms : 1000;
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
	install_string_library(e->L);
	/* One slot more for the rule library. */
	e->policies = calloc(o->nfiles + 1, sizeof(*e->policies));
	if (!e->policies)
		abort();
	for (int i = 0; i < o->nfiles; i++) {
		struct policy *p = &e->policies[e->npolicies];
		p->file = strdup(o->files[i]);
		const char *base = strrchr(o->files[i], '/');
		base = base ? base + 1 : o->files[i];
		p->name = strdup(base);
		char *dot = strrchr(p->name, '.');
		if (dot && !strcmp(dot, ".lua"))
			*dot = 0;
		e->npolicies++;
		if (!make_env(e, p->name, err, errlen) || !run_file(e, o->files[i], err, errlen))
			goto fail;
		lua_pop(e->L, 1);   /* what the file returned */
		/* Read the environment raw: the file may have given it a metatable. */
		p->has_statement = raw_is_function(e->L, -1, "on_statement");
		p->has_connect = raw_is_function(e->L, -1, "on_connect");
		p->has_commit = raw_is_function(e->L, -1, "on_commit");
		p->has_lock_wait = raw_is_function(e->L, -1, "on_lock_wait");
		p->has_end = raw_is_function(e->L, -1, "on_end");
		if (raw_is_true(e->L, -1, "see_dml"))
			e->wants_dml = true;
		if (raw_is_true(e->L, -1, "see_writes"))
			e->wants_writes = true;
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
			if (raw_get(e->L, -1, "rule_levels") == LUA_TTABLE) {
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
	lua_settop(e->L, 0);
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

/*
 * stmt.tree is converted only when a policy reads it. The packed tree is an upvalue of this
 * __index, out of the policy's reach: protobuf-c would unpack whatever bytes it was given
 * (recursively: deep enough nesting overflows the C stack), so a policy must not be able to
 * hand it its own.
 */
static int l_stmt_index(lua_State *L)
{
	const char *k = lua_tostring(L, 2);
	if (k && !strcmp(k, "tree")) {
		size_t len;
		const char *pb = lua_tolstring(L, lua_upvalueindex(1), &len);
		if (!pb || !lua_istable(L, 1))
			return 0;
		tree_push(L, (const uint8_t *)pb, len);
		lua_pushliteral(L, "tree");
		lua_pushvalue(L, -2);
		lua_rawset(L, 1);   /* cache: the next read is a plain field */
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
	lua_createtable(L, 0, 1);
	if (st->tree && st->tree_len)
		lua_pushlstring(L, (const char *)st->tree, st->tree_len);
	else
		lua_pushnil(L);
	lua_pushcclosure(L, l_stmt_index, 1);
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

/*
 * Field k of the decision table at index t, read raw (a decision is a plain table; a
 * metatable on it runs no code) into out as clean text (see clean_text). False when the
 * field is absent; *bad when it is there but neither a string nor a number.
 */
static bool decision_text(lua_State *L, int t, const char *k, char *out, size_t cap, bool *bad)
{
	int ty = raw_get(L, t, k);
	bool found = false;
	if (ty == LUA_TSTRING || ty == LUA_TNUMBER) {
		size_t len;
		const char *v = lua_tolstring(L, -1, &len);
		/* A rule id goes into log lines and metric labels: one line. */
		clean_text(v, len, out, cap, !strcmp(k, "rule"));
		found = true;
	} else if (ty != LUA_TNIL)
		*bad = true;
	lua_pop(L, 1);
	if (!found)
		out[0] = 0;
	return found;
}

static long decision_duration(lua_State *L, int t, const char *k, bool *bad)
{
	int ty = raw_get(L, t, k);
	long ms = 0;
	if (ty == LUA_TNUMBER) {
		lua_Number n = lua_tonumber(L, -1);
		ms = n >= 0 && n <= 9.0e15 ? (long)n : -1;
	} else if (ty == LUA_TSTRING)
		ms = policy_parse_duration(lua_tostring(L, -1));
	else if (ty != LUA_TNIL)
		*bad = true;
	if (ms < 0 || ms > INT_MAX)
		*bad = true;
	lua_pop(L, 1);
	return ms;
}

/* An SQLSTATE as PostgreSQL accepts it: five digits or upper-case letters. */
static bool valid_sqlstate(const char *s)
{
	if (strlen(s) != 5)
		return false;
	for (int i = 0; i < 5; i++)
		if (!isdigit((unsigned char)s[i]) && !isupper((unsigned char)s[i]))
			return false;
	return true;
}

/* Read one decision table at index t into v. False (why set) when it is not a decision. */
static bool read_decision(lua_State *L, int t, const struct policy *p, struct verdict *v,
			  char *why, size_t whylen)
{
	bool bad = false;
	char action[16], rule[RULE_MAX + 1];
	if (!decision_text(L, t, "action", action, sizeof(action), &bad)) {
		snprintf(why, whylen, "returned a table that is not a decision (use allow(), deny{…}, warn(…) or set{…})");
		return false;
	}
	if (!decision_text(L, t, "rule", rule, sizeof(rule), &bad))
		snprintf(rule, sizeof(rule), "%s", p->name);
	if (!strcmp(action, "allow"))
		return true;
	if (!strcmp(action, "deny")) {
		char sqlstate[8], msg[TEXT_MAX + 1], detail[TEXT_MAX + 1], hint[TEXT_MAX + 1];
		bool has_state = decision_text(L, t, "sqlstate", sqlstate, sizeof(sqlstate), &bad);
		bool has_msg = decision_text(L, t, "message", msg, sizeof(msg), &bad);
		bool has_detail = decision_text(L, t, "detail", detail, sizeof(detail), &bad);
		bool has_hint = decision_text(L, t, "hint", hint, sizeof(hint), &bad);
		if (bad) {
			snprintf(why, whylen, "deny: message, detail, hint, rule and sqlstate must be strings");
			return false;
		}
		/* The SQLSTATE goes into the statement ddlguard makes the server fail with. */
		if (has_state && !valid_sqlstate(sqlstate)) {
			snprintf(why, whylen, "deny: sqlstate must be 5 digits or upper-case letters, got \"%s\"", sqlstate);
			return false;
		}
		struct verdict d;
		verdict_init(&d);
		verdict_deny(&d, has_state ? sqlstate : NULL, rule, has_msg ? msg : NULL,
			     has_detail ? detail : NULL, has_hint ? hint : NULL);
		raw_get(L, t, "override");
		d.overridable = lua_toboolean(L, -1);
		lua_pop(L, 1);
		verdict_merge(v, &d);
		return true;
	}
	if (!strcmp(action, "warn")) {
		char msg[TEXT_MAX + 1], hint[TEXT_MAX + 1];
		bool has_msg = decision_text(L, t, "message", msg, sizeof(msg), &bad);
		bool has_hint = decision_text(L, t, "hint", hint, sizeof(hint), &bad);
		if (bad || !has_msg) {
			snprintf(why, whylen, "warn: needs a message string");
			return false;
		}
		verdict_add_warning(v, rule, msg, has_hint ? hint : NULL);
		return true;
	}
	if (!strcmp(action, "set")) {
		long lt = decision_duration(L, t, "lock_timeout", &bad);
		long st = decision_duration(L, t, "statement_timeout", &bad);
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

/* Read a hook's answer at index r: nothing, true, a decision or a list of decisions. */
static bool read_answer(lua_State *L, int r, const struct policy *p, struct verdict *v,
			char *why, size_t whylen)
{
	int ty = lua_type(L, r);
	if (ty == LUA_TNIL || (ty == LUA_TBOOLEAN && lua_toboolean(L, r)))
		return true;
	if (ty != LUA_TTABLE) {
		snprintf(why, whylen, "returned a %s, not a decision", lua_typename(L, ty));
		return false;
	}
	/* Decisions are plain tables; one with a metatable would pretend to be something else. */
	if (lua_getmetatable(L, r)) {
		lua_pop(L, 1);
		snprintf(why, whylen, "returned a table with a metatable (decisions are plain tables)");
		return false;
	}
	if (raw_get(L, r, "action") != LUA_TNIL) {
		lua_pop(L, 1);
		return read_decision(L, r, p, v, why, whylen);
	}
	lua_pop(L, 1);
	lua_Unsigned n = lua_rawlen(L, r);
	if (n > ANSWER_MAX) {
		snprintf(why, whylen, "returned a list of more than %d decisions", ANSWER_MAX);
		return false;
	}
	for (lua_Unsigned i = 1; i <= n; i++) {
		lua_rawgeti(L, r, (lua_Integer)i);
		bool ok = lua_istable(L, -1);
		if (ok && lua_getmetatable(L, -1)) {
			lua_pop(L, 1);
			ok = false;
		}
		ok = ok && read_decision(L, lua_gettop(L), p, v, why, whylen);
		lua_pop(L, 1);
		if (!ok) {
			if (!why[0])
				snprintf(why, whylen, "returned a list holding something that is not a decision");
			return false;
		}
	}
	return true;
}

static void policy_failed(struct policy_engine *e, const struct policy *p, const char *what,
			  struct verdict *v)
{
	/* The error may quote statement text: keep the log line one line. */
	clean_text(what, strlen(what), e->last_error, sizeof(e->last_error), true);
	v->policy_error = true;
	if (e->fail_open)
		return;
	char msg[600];
	snprintf(msg, sizeof(msg), "ddlguard could not evaluate policy \"%s\"", p->name);
	struct verdict d;
	verdict_init(&d);
	verdict_deny(&d, "42501", p->name, msg, e->last_error,
		     "Fix the policy, or set policy_failure = open to let statements through when a policy fails.");
	verdict_merge(v, &d);
}

/* ---------------------------------------------------------------- hooks */

enum hook_kind { HOOK_STATEMENT, HOOK_CONNECT, HOOK_END, HOOK_LOCK_WAIT, HOOK_COMMIT };

static const char *const hook_names[] = {
	[HOOK_STATEMENT] = "on_statement", [HOOK_CONNECT] = "on_connect", [HOOK_END] = "on_end",
	[HOOK_LOCK_WAIT] = "on_lock_wait", [HOOK_COMMIT] = "on_commit",
};

/* One hook call, built by call_hook and run by l_run_hook inside a guarded call. */
struct hook_job {
	struct policy *p;
	enum hook_kind kind;
	const struct stmt_info *st;          /* HOOK_STATEMENT */
	const struct policy_lock_wait *w;    /* HOOK_LOCK_WAIT */
	const struct policy_session *s;
	struct verdict got;                  /* the answer; owned by call_hook, which frees it */
	bool answered;                       /* got holds a valid answer */
	char why[256];                       /* ... or why it is not one */
};

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

static void push_wait(lua_State *L, const struct policy_lock_wait *w)
{
	lua_createtable(L, 0, 6);
	set_str(L, "relation", w->relation);
	set_str(L, "mode", w->mode);
	lua_pushnumber(L, w->waited);
	lua_setfield(L, -2, "waited");
	push_holders(L, w->blockers, w->nblockers, "xact_age");
	lua_setfield(L, -2, "blockers");
	push_holders(L, w->queued, w->nqueued, "waited");
	lua_setfield(L, -2, "queued");
}

/*
 * Body of a hook call: find the hook, build its arguments, call it, read its answer. All of
 * it runs protected and under the budget and the cap: building the arguments allocates, and
 * the answer is the policy's data.
 */
static int l_run_hook(lua_State *L)
{
	struct hook_job *j = lua_touserdata(L, 1);
	lua_settop(L, 0);
	lua_rawgeti(L, LUA_REGISTRYINDEX, j->p->env_ref);
	raw_get(L, 1, hook_names[j->kind]);
	lua_remove(L, 1);
	int nargs = 0;
	switch (j->kind) {
	case HOOK_STATEMENT:
		push_stmt(L, j->st);
		push_session(L, j->s);
		nargs = 2;
		break;
	case HOOK_CONNECT:
	case HOOK_END:
		push_session(L, j->s);
		nargs = 1;
		break;
	case HOOK_LOCK_WAIT:
		push_wait(L, j->w);
		push_session(L, j->s);
		nargs = 2;
		break;
	case HOOK_COMMIT:
		lua_createtable(L, 0, 1);
		push_session(L, j->s);
		lua_getfield(L, -1, "statements");
		lua_setfield(L, -3, "statements");
		nargs = 2;
		break;
	}
	lua_call(L, nargs, 1);
	if (j->kind == HOOK_COMMIT)
		j->answered = true;   /* informational: the answer is ignored */
	else
		j->answered = read_answer(L, 1, j->p, &j->got, j->why, sizeof(j->why));
	return 0;
}

/* Call one hook of policy p for session s and fold its answer (or its failure) into v. */
static void call_hook(struct policy_engine *e, struct policy *p, struct hook_job *j, struct verdict *v)
{
	char what[600];
	j->p = p;
	j->answered = false;
	j->why[0] = 0;
	verdict_init(&j->got);
	e->current = j->s;
	bool ok = guarded_call(e, l_run_hook, j, 0, 0, p->file, what, sizeof(what));
	e->current = NULL;
	if (ok && !j->answered) {
		snprintf(what, sizeof(what), "%s: %s %s", p->file, hook_names[j->kind], j->why);
		ok = false;
	}
	if (ok)
		verdict_merge(v, &j->got);
	else {
		verdict_free(&j->got);
		policy_failed(e, p, what, v);
	}
}

void policy_check_statement(struct policy_engine *e, const struct stmt_info *st,
			    const struct policy_session *s, struct verdict *v)
{
	if (!e)
		return;
	for (int i = 0; i < e->npolicies; i++) {
		struct policy *p = &e->policies[i];
		if (!p->has_statement)
			continue;
		struct hook_job j = { .kind = HOOK_STATEMENT, .st = st, .s = s };
		call_hook(e, p, &j, v);
	}
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
	for (int i = 0; i < e->npolicies; i++) {
		struct policy *p = &e->policies[i];
		if (!p->has_connect)
			continue;
		struct hook_job j = { .kind = HOOK_CONNECT, .s = s };
		call_hook(e, p, &j, v);
	}
}

void policy_check_end(struct policy_engine *e, const struct policy_session *s, struct verdict *v)
{
	if (!e)
		return;
	for (int i = 0; i < e->npolicies; i++) {
		struct policy *p = &e->policies[i];
		if (!p->has_end)
			continue;
		struct hook_job j = { .kind = HOOK_END, .s = s };
		call_hook(e, p, &j, v);
	}
}

bool policy_check_lock_wait(struct policy_engine *e, const struct policy_lock_wait *w,
			    const struct policy_session *s)
{
	if (!e)
		return false;
	struct verdict v;
	verdict_init(&v);
	for (int i = 0; i < e->npolicies; i++) {
		struct policy *p = &e->policies[i];
		if (!p->has_lock_wait)
			continue;
		struct hook_job j = { .kind = HOOK_LOCK_WAIT, .w = w, .s = s };
		call_hook(e, p, &j, &v);
	}
	bool cancel = v.cancel;
	verdict_free(&v);
	return cancel;
}

void policy_notify_commit(struct policy_engine *e, const struct policy_session *s)
{
	if (!e)
		return;
	for (int i = 0; i < e->npolicies; i++) {
		struct policy *p = &e->policies[i];
		if (!p->has_commit)
			continue;
		struct verdict ignored;
		verdict_init(&ignored);
		struct hook_job j = { .kind = HOOK_COMMIT, .s = s };
		call_hook(e, p, &j, &ignored);
		verdict_free(&ignored);
	}
}

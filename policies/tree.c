/*
 * tree.c — lazy Lua view of a statement's parse tree (see tree.h for the shape Lua sees).
 *
 * Objects:
 *   root     full userdata holding the unpacked PgQuery__ParseResult; __gc frees it. Its
 *            user value is a cache table: view pointer key → view, so a field read twice
 *            gives the same Lua object and each view is built once.
 *   message  full userdata {msg, NULL}: one protobuf message, converted a field at a time
 *            by __index through the message's ProtobufCMessageDescriptor.
 *   list     full userdata {msg, field}: the repeated field `field` of msg.
 * Every message and list keeps the root alive through its user value, so the unpacked tree
 * lives as long as any view of it. The root's cache holds the views in turn; Lua's
 * collector handles that cycle, and only the root has a finalizer, so no view can be
 * reached after the tree is freed.
 *
 * Nothing here knows a single pg_query node type: everything goes through the protobuf-c
 * descriptors, so a newer libpg_query needs no change here.
 */
#include "policies/tree.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <lauxlib.h>
#include <pg_query/pg_query.pb-c.h>

#define TREE_ROOT_MT "ddlguard.tree.root"
#define TREE_MESSAGE_MT "ddlguard.tree.message"
#define TREE_LIST_MT "ddlguard.tree.list"

struct tree_root {
	PgQuery__ParseResult *result;   /* unpacked with `pba`; NULL until unpacked */
	lua_Alloc alloc;                /* the lua_State's allocator, for the memory cap */
	void *alloc_ud;
	ProtobufCAllocator pba;         /* protobuf-c → alloc; allocator_data = this root */
};

struct tree_view {
	const ProtobufCMessage *msg;
	const ProtobufCFieldDescriptor *list;   /* non-NULL: the repeated field `list` of msg */
};

/* ------------------------------------------------------------------ allocator bridge */

/* Lua's allocator wants the old size on free; protobuf-c does not give it, so each
 * block carries its size in front (aligned for any type). */
union block_header {
	size_t size;
	max_align_t align;
};

static void *pb_alloc(void *data, size_t size)
{
	struct tree_root *root = data;
	if (size > SIZE_MAX - sizeof(union block_header))
		return NULL;
	union block_header *h = root->alloc(root->alloc_ud, NULL, 0, sizeof *h + size);
	if (h == NULL)
		return NULL;
	h->size = size;
	return h + 1;
}

static void pb_free(void *data, void *ptr)
{
	struct tree_root *root = data;
	if (ptr == NULL)
		return;
	union block_header *h = (union block_header *)ptr - 1;
	root->alloc(root->alloc_ud, h, sizeof *h + h->size, 0);
}

static int l_root_gc(lua_State *L)
{
	struct tree_root *root = luaL_checkudata(L, 1, TREE_ROOT_MT);
	if (root->result) {
		protobuf_c_message_free_unpacked(&root->result->base, &root->pba);
		root->result = NULL;
	}
	return 0;
}

/* ------------------------------------------------------------------ converting values */

static void push_message(lua_State *L, int root, const ProtobufCMessage *m);

/* Is oneof member f of m the member that is set? Members share storage. */
static bool oneof_active(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
		return true;
	return *(const uint32_t *)((const char *)m + f->quantifier_offset) == f->id;
}

static size_t repeated_count(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	return *(const size_t *)((const char *)m + f->quantifier_offset);
}

/* Size of one element of a repeated field's array, by the field's type. */
static size_t element_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return 4;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return 8;
	case PROTOBUF_C_TYPE_FLOAT:
		return sizeof(float);
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_ENUM:
		return sizeof(int);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
	default:
		return sizeof(ProtobufCMessage *);
	}
}

/* Push the value of type f->type stored at p (a field, or one element of a repeated one). */
static void push_value(lua_State *L, int root, const ProtobufCFieldDescriptor *f, const void *p)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		lua_pushinteger(L, *(const int32_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		lua_pushinteger(L, *(const uint32_t *)p);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		lua_pushinteger(L, *(const int64_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		lua_pushinteger(L, (lua_Integer) * (const uint64_t *)p);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		lua_pushnumber(L, *(const float *)p);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		lua_pushnumber(L, *(const double *)p);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		lua_pushboolean(L, *(const protobuf_c_boolean *)p);
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		int v = *(const int *)p;
		const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
		if (ev)
			lua_pushstring(L, ev->name);
		else
			lua_pushinteger(L, v);   /* a value newer than these descriptors */
		break;
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;
		if (s == NULL || s[0] == '\0')
			lua_pushnil(L);          /* proto3: empty and absent are the same */
		else
			lua_pushstring(L, s);
		break;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *b = p;
		lua_pushlstring(L, (const char *)b->data, b->len);
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		push_message(L, root, *(ProtobufCMessage *const *)p);
		break;
	default:
		lua_pushnil(L);
		break;
	}
}

/*
 * Push the cached view for `key`, or create it: a message view (list == NULL) or a list
 * view. root is the absolute stack index of the root userdata.
 */
static void push_view(lua_State *L, int root, const ProtobufCMessage *m,
		      const ProtobufCFieldDescriptor *list)
{
	/* A list's key is the address of its array member inside the parent message, which
	 * no other view's key (a message's own address) can equal. */
	const void *key = list ? (const void *)((const char *)m + list->offset) : (const void *)m;

	lua_getiuservalue(L, root, 1);
	int cache = lua_gettop(L);
	if (lua_rawgetp(L, cache, key) != LUA_TNIL) {
		lua_remove(L, cache);
		return;
	}
	lua_pop(L, 1);

	struct tree_view *v = lua_newuserdatauv(L, sizeof *v, 1);
	v->msg = m;
	v->list = list;
	lua_pushvalue(L, root);
	lua_setiuservalue(L, -2, 1);
	luaL_setmetatable(L, list ? TREE_LIST_MT : TREE_MESSAGE_MT);
	lua_pushvalue(L, -1);
	lua_rawsetp(L, cache, key);
	lua_remove(L, cache);
}

/* Push a message view; a pg_query Node (the oneof of all node types) is unwrapped to
 * the message inside it. */
static void push_message(lua_State *L, int root, const ProtobufCMessage *m)
{
	while (m && m->descriptor == &pg_query__node__descriptor) {
		const PgQuery__Node *n = (const PgQuery__Node *)m;
		const ProtobufCFieldDescriptor *f =
			protobuf_c_message_descriptor_get_field(m->descriptor, n->node_case);
		if (f == NULL || f->type != PROTOBUF_C_TYPE_MESSAGE)
			m = NULL;
		else
			m = *(ProtobufCMessage *const *)((const char *)m + f->offset);
	}
	if (m == NULL)
		lua_pushnil(L);
	else
		push_view(L, root, m, NULL);
}

static void push_field(lua_State *L, int root, const ProtobufCMessage *m,
		       const ProtobufCFieldDescriptor *f)
{
	if (!oneof_active(m, f)) {
		lua_pushnil(L);
	} else if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		push_view(L, root, m, f);
	} else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE &&
		   f->type != PROTOBUF_C_TYPE_STRING &&
		   !*(const protobuf_c_boolean *)((const char *)m + f->quantifier_offset)) {
		lua_pushnil(L);   /* proto2/proto3-optional scalar without its has_ flag */
	} else {
		push_value(L, root, f, (const char *)m + f->offset);
	}
}

/* Whether pairs() lists the field: set, in protobuf's sense (pg_query's JSON output
 * omits the same ones). */
static bool field_is_set(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	const char *p = (const char *)m + f->offset;
	if (!oneof_active(m, f))
		return false;
	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return repeated_count(m, f) > 0;
	switch (f->type) {
	case PROTOBUF_C_TYPE_MESSAGE:
		return *(ProtobufCMessage *const *)p != NULL;
	case PROTOBUF_C_TYPE_STRING:
		return *(char *const *)p && (*(char *const *)p)[0];
	case PROTOBUF_C_TYPE_BYTES:
		return ((const ProtobufCBinaryData *)p)->len > 0;
	default: {
		size_t n = element_size(f->type);
		for (size_t i = 0; i < n; i++)
			if (p[i])
				return true;
		return false;
	}
	}
}

/* ------------------------------------------------------------------ message metamethods */

/* A message's type name as pg_query.proto spells it ("A_Const", "AlterTableStmt"): the
 * descriptor's full name without the package. short_name is the C spelling ("AConst"). */
static const char *type_name(const ProtobufCMessageDescriptor *d)
{
	size_t plen = strlen(d->package_name);
	if (plen && strncmp(d->name, d->package_name, plen) == 0 && d->name[plen] == '.')
		return d->name + plen + 1;
	return d->name;
}

static int l_message_index(lua_State *L)
{
	const struct tree_view *v = luaL_checkudata(L, 1, TREE_MESSAGE_MT);
	const ProtobufCMessageDescriptor *d = v->msg->descriptor;
	if (lua_type(L, 2) != LUA_TSTRING) {
		lua_pushnil(L);
		return 1;
	}
	const char *key = lua_tostring(L, 2);
	if (strcmp(key, "node_type") == 0) {
		lua_pushstring(L, type_name(d));
		return 1;
	}
	if (strcmp(key, type_name(d)) == 0) {
		lua_settop(L, 1);
		return 1;
	}
	const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, key);
	if (f == NULL) {
		lua_pushnil(L);
		return 1;
	}
	lua_getiuservalue(L, 1, 1);
	push_field(L, lua_gettop(L), v->msg, f);
	return 1;
}

/* pairs() iterator: node_type first, then the fields that are set, in declaration order. */
static int l_message_next(lua_State *L)
{
	const struct tree_view *v = luaL_checkudata(L, 1, TREE_MESSAGE_MT);
	const ProtobufCMessageDescriptor *d = v->msg->descriptor;
	unsigned start;

	if (lua_isnoneornil(L, 2)) {
		lua_pushliteral(L, "node_type");
		lua_pushstring(L, type_name(d));
		return 2;
	}
	const char *key = luaL_checkstring(L, 2);
	if (strcmp(key, "node_type") == 0) {
		start = 0;
	} else {
		const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, key);
		if (f == NULL)
			return luaL_error(L, "invalid key to 'next'");
		start = (unsigned)(f - d->fields) + 1;
	}
	lua_getiuservalue(L, 1, 1);
	int root = lua_gettop(L);
	for (unsigned i = start; i < d->n_fields; i++) {
		if (!field_is_set(v->msg, &d->fields[i]))
			continue;
		lua_pushstring(L, d->fields[i].name);
		push_field(L, root, v->msg, &d->fields[i]);
		return 2;
	}
	lua_pushnil(L);
	return 1;
}

static int l_message_pairs(lua_State *L)
{
	luaL_checkudata(L, 1, TREE_MESSAGE_MT);
	lua_pushcfunction(L, l_message_next);
	lua_pushvalue(L, 1);
	lua_pushnil(L);
	return 3;
}

static int l_message_tostring(lua_State *L)
{
	const struct tree_view *v = luaL_checkudata(L, 1, TREE_MESSAGE_MT);
	lua_pushstring(L, type_name(v->msg->descriptor));
	return 1;
}

/* ------------------------------------------------------------------ list metamethods */

static int l_list_index(lua_State *L)
{
	const struct tree_view *v = luaL_checkudata(L, 1, TREE_LIST_MT);
	int isnum = 0;
	lua_Integer i = lua_tointegerx(L, 2, &isnum);
	size_t n = repeated_count(v->msg, v->list);
	if (!isnum || i < 1 || (lua_Unsigned)i > n) {
		lua_pushnil(L);
		return 1;
	}
	const char *arr = *(const char *const *)((const char *)v->msg + v->list->offset);
	lua_getiuservalue(L, 1, 1);
	push_value(L, lua_gettop(L), v->list, arr + (size_t)(i - 1) * element_size(v->list->type));
	return 1;
}

static int l_list_len(lua_State *L)
{
	const struct tree_view *v = luaL_checkudata(L, 1, TREE_LIST_MT);
	lua_pushinteger(L, (lua_Integer)repeated_count(v->msg, v->list));
	return 1;
}

/* pairs() iterator over a list: the items that are not nil, in order. A list can hold
 * PostgreSQL's NIL (an empty Node), which reads as nil and would stop ipairs() early. */
static int l_list_next(lua_State *L)
{
	const struct tree_view *v = luaL_checkudata(L, 1, TREE_LIST_MT);
	lua_Integer n = (lua_Integer)repeated_count(v->msg, v->list);
	for (lua_Integer i = luaL_optinteger(L, 2, 0) + 1; i <= n; i++) {
		lua_settop(L, 1);
		lua_pushinteger(L, i);
		l_list_index(L);   /* pushes element i */
		if (!lua_isnil(L, -1)) {
			lua_pushinteger(L, i);
			lua_insert(L, -2);
			return 2;
		}
	}
	lua_pushnil(L);
	return 1;
}

static int l_list_pairs(lua_State *L)
{
	luaL_checkudata(L, 1, TREE_LIST_MT);
	lua_pushcfunction(L, l_list_next);
	lua_pushvalue(L, 1);
	lua_pushinteger(L, 0);
	return 3;
}

static int l_list_tostring(lua_State *L)
{
	const struct tree_view *v = luaL_checkudata(L, 1, TREE_LIST_MT);
	lua_pushfstring(L, "list of %d", (int)repeated_count(v->msg, v->list));
	return 1;
}

static int l_readonly(lua_State *L)
{
	return luaL_error(L, "the parse tree is read-only");
}

/* ------------------------------------------------------------------ public */

/* Create the three metatables in the registry the first time. __metatable hides them
 * from getmetatable() so a policy cannot reach the finalizer or the methods. */
static void ensure_metatables(lua_State *L)
{
	if (luaL_newmetatable(L, TREE_ROOT_MT)) {
		lua_pushcfunction(L, l_root_gc);
		lua_setfield(L, -2, "__gc");
		lua_pushliteral(L, "ddlguard.tree");
		lua_setfield(L, -2, "__metatable");
	}
	lua_pop(L, 1);
	if (luaL_newmetatable(L, TREE_MESSAGE_MT)) {
		static const luaL_Reg m[] = {
			{"__index", l_message_index},
			{"__newindex", l_readonly},
			{"__pairs", l_message_pairs},
			{"__tostring", l_message_tostring},
			{NULL, NULL},
		};
		luaL_setfuncs(L, m, 0);
		lua_pushliteral(L, "ddlguard.tree");
		lua_setfield(L, -2, "__metatable");
	}
	lua_pop(L, 1);
	if (luaL_newmetatable(L, TREE_LIST_MT)) {
		static const luaL_Reg m[] = {
			{"__index", l_list_index},
			{"__newindex", l_readonly},
			{"__len", l_list_len},
			{"__pairs", l_list_pairs},
			{"__tostring", l_list_tostring},
			{NULL, NULL},
		};
		luaL_setfuncs(L, m, 0);
		lua_pushliteral(L, "ddlguard.tree");
		lua_setfield(L, -2, "__metatable");
	}
	lua_pop(L, 1);
}

void tree_push(lua_State *L, const uint8_t *pb, size_t len)
{
	ensure_metatables(L);

	/* The root exists (with its finalizer) before anything is unpacked, so a Lua
	 * memory error raised later in here cannot leak the tree. */
	struct tree_root *root = lua_newuserdatauv(L, sizeof *root, 1);
	memset(root, 0, sizeof *root);
	root->alloc = lua_getallocf(L, &root->alloc_ud);
	root->pba.alloc = pb_alloc;
	root->pba.free = pb_free;
	root->pba.allocator_data = root;
	luaL_setmetatable(L, TREE_ROOT_MT);
	lua_newtable(L);
	lua_setiuservalue(L, -2, 1);
	int r = lua_gettop(L);

	if (pb && len > 0)
		root->result = pg_query__parse_result__unpack(&root->pba, len, pb);
	if (root->result == NULL || root->result->n_stmts < 1 || root->result->stmts[0] == NULL ||
	    root->result->stmts[0]->stmt == NULL) {
		lua_pop(L, 1);
		lua_pushnil(L);
		return;
	}

	/* No explicit collector step here: Lua's collector does not see the unpacked tree,
	 * but it sees the packed copy every statement carries (stmt.__tree_pb), so it already
	 * runs at the pace trees are made. A step per tree forced a young collection in the
	 * middle of every statement under the generational collector; what was alive then
	 * aged into the old generation, which only a major collection frees, and Lua's own
	 * count (without the trees) never called for one. The garbage trees filled the
	 * memory cap after some 20,000 statements, and policies then failed (deny). */

	push_message(L, r, &root->result->stmts[0]->stmt->base);
	lua_remove(L, r);
}

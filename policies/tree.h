/*
 * tree — a statement's parse tree as a lazy, read-only Lua value.
 *
 * stmt_info.tree holds the statement as protobuf bytes (a pg_query.ParseResult with one
 * RawStmt, locations zeroed). tree_push() unpacks them once and gives Lua a view of the
 * RawStmt's `stmt` node whose fields are converted one at a time, when a policy reads
 * them, so a rule that looks only at `tree.relation.relname` pays for nothing else. It
 * lets a DBA write a rule ddlguard's authors never thought of; the statement fields that
 * rules usually need (tag, locks, objects…) come from statement.c, not from here.
 *
 * The shape, for policy authors (docs/policies.md should carry the same text):
 *
 *   - Every message is a read-only object. `x.node_type` is its type name
 *     ("AlterTableStmt", "RangeVar", "ColumnDef"…), and `x.AlterTableStmt` is x itself
 *     when x is one, nil otherwise, so both styles work:
 *         if tree.node_type == "AlterTableStmt" then … tree.relation.relname … end
 *         local alter = tree.AlterTableStmt; if alter then … alter.relation.relname … end
 *     (`node_type`, not `node`: SortBy has a real field called `node`.)
 *   - Field names are those of libpg_query's pg_query.proto, in snake_case as written
 *     there: relname, schemaname, missing_ok, type_name, raw_expr, stmt_len…
 *   - The Node wrapper (protobuf's oneof of every node type) is unwrapped: a field of type
 *     Node gives the object inside it, so `cmd.def.colname` rather than
 *     `cmd.def.ColumnDef.colname` (which also works, see above).
 *   - Repeated fields are read-only arrays, converted lazily too: `#tree.cmds`,
 *     `tree.cmds[1]`, `ipairs(tree.cmds)`. An absent repeated field is an empty array.
 *     An item can be PostgreSQL's NIL (an empty Node, e.g. the missing column list of
 *     a function in FROM), which reads as nil and stops ipairs() early: `for i = 1, #l`
 *     sees every position, pairs(l) every item that is not nil.
 *   - Enums are their value names as in pg_query.proto: cmd.subtype == "AT_AddColumn",
 *     constraint.contype == "CONSTR_FOREIGN", stmt.behavior == "DROP_CASCADE".
 *   - Strings, numbers and booleans are Lua values. proto3 cannot tell an empty string
 *     from an absent one, so both read as nil (`if rel.schemaname then` works as
 *     expected); an absent message reads as nil; an absent number reads as 0 and an
 *     absent boolean as false.
 *   - pairs(x) lists node_type and the fields that are set, in declaration order.
 *   - Reading the same field twice gives the same Lua object (views are cached), and
 *     every view keeps the whole unpacked tree alive until the last one is collected.
 *   - Locations are all 0: the tree is the one the strict id is computed from.
 *
 * The unpacked tree is allocated with the lua_State's allocator, so it counts against
 * the engine's memory cap like any other Lua object.
 */
#ifndef DDLG_TREE_H
#define DDLG_TREE_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

/*
 * Push a lazy view of the statement in `pb` (stmt_info.tree, tree_len bytes). The bytes
 * are copied: the caller may free them as soon as this returns. Pushes nil when the bytes
 * do not unpack (or the allocator refused the memory to unpack them) or hold no
 * statement. Like any lua_push*, may raise a Lua memory error: call it where the engine
 * calls into Lua, under a protected call.
 */
void tree_push(lua_State *L, const uint8_t *pb, size_t len);

#endif

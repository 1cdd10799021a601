"""Lua sandbox attacks through ddlguard, one test per attack (docs/policies.md, "The sandbox").

Each test asserts what a user observes: the statement is denied with SQLSTATE 42501 and a
message naming the policy failure, the DETAIL and ddlguard's log give the policy file, the
line and what stopped it, and afterwards the same proxy still serves: the same connection, a
new one, and a session that was open all along; no descriptor is left behind, and the harness
fails any test during which AddressSanitizer, LeakSanitizer or UBSan said anything.

The attack statement goes through psql with a timeout, so an attack that hangs or kills the
proxy fails its test in seconds instead of waiting for the runner's watchdog.
"""

import os
import re
import signal
import subprocess
import time

import psycopg2

from harness import (PSQL, USERS, ProxyTestCase, ddlguard_bin, proxy_only, run, subdir,
                     wait_for)

FAILED = 'ddlguard could not evaluate policy "attacks" (ddlguard: attacks)'


def stop_reason(expect, text):
    """Whether `text` names the limit `expect` says stopped a policy. A loop is stopped by the
    instruction budget, or, when the machine is slow enough (ASan, a loaded CI box), by the
    wall-clock policy_time_limit first: either is the sandbox doing its job."""
    if expect == 'instruction budget exceeded':
        return expect in text or 'time limit exceeded' in text
    return expect in text

# name -> Lua body of an attack. Each runs as on_statement for CREATE TABLE sbx_<name>; the
# line the failure is reported at is the body's first line unless a line says --HERE.
ATTACKS = {
    # Reading files, running commands, reaching the host.
    'io_open': 'return deny(io.open("/etc/passwd"):read("a"))',
    'io_lines': 'for line in io.lines("/etc/passwd") do return deny(line) end',
    'io_popen': 'return deny(io.popen("id"):read("a"))',
    'dofile': 'dofile("/etc/passwd")',
    'loadfile': 'return loadfile("/etc/passwd")()',
    'require': 'require("os")',
    'package_loadlib': 'return package.loadlib("libc.so.6", "system")("id")',
    'os_execute': 'os.execute("touch /tmp/ddlguard-sandbox-pwned")',
    'os_getenv': 'return deny(os.getenv("PATH"))',
    'os_remove': 'os.remove("/tmp/ddlguard-sandbox-victim")',
    'os_exit': 'os.exit(1)',
    'debug_getinfo': 'return deny(debug.getinfo(1).source)',
    'debug_sethook': 'debug.sethook()',
    'load_reaches_io': 'return load("return io.open(\'/etc/passwd\')")()',
    # Bytecode.
    'string_dump': 'return load(string.dump(function() end))()',
    'string_dump_method': 'local dump = ("").dump\n'
                          'return deny("dumped " .. #dump(function() end) .. " bytes") --HERE',
    'bytecode_literal': 'assert(load("\\27Lua\\84\\0\\25\\147\\13\\10\\26\\10\\4\\8\\8"))',
    'load_mode_b': 'local f = assert(load("return 1", "=chunk", "b"))\nreturn deny("loaded")',
    'load_reader': 'return load(function() return nil end)',
    # Loops.
    'infinite_loop': 'while true do end',
    'loop_in_pcall': 'pcall(function() while true do end end)\nreturn allow()',
    'loop_in_xpcall': 'xpcall(function() while true do end end, function() return "caught" end)\n'
                      'return allow()',
    'loop_in_coroutine': 'coroutine.resume(coroutine.create(function() while true do end end))\n'
                         'return allow()',
    'loop_in_wrap': 'pcall(coroutine.wrap(function() while true do end end))\nreturn allow()',
    'coroutine_forever': 'local co = coroutine.wrap(function() while true do coroutine.yield() end end)\n'
                         'while true do co() end',
    'yield_across_pcall': 'local co = coroutine.create(function() while true do pcall(coroutine.yield) end end)\n'
                          'while true do coroutine.resume(co) end',
    'short_coroutines': 'for i = 1, 5000 do coroutine.wrap(function() for j = 1, 950 do end end)() end\n'
                        'return allow()',
    'close_handler_loop': 'do local x <close> = setmetatable({}, { __close = function() while true do end end }) end\n'
                          'return allow()',
    'gc_finalizer': 'setmetatable({}, { __gc = function() while true do end end })\nreturn allow()',
    # Memory.
    'table_growth': 'local t = {}\nwhile true do t[#t + 1] = ("x"):rep(1000) .. #t end',
    'concat_bomb': 'local s = "x"\nwhile true do s = s .. s end',
    'rep_too_large': 'return deny(("x"):rep(1 << 40))',
    'rep_over_cap': 'return deny(("x"):rep(1 << 30))',
    'rep_separator': 'return deny(string.rep("x", 1 << 28, "yy"))',
    'memory_in_coroutine': 'coroutine.resume(coroutine.create(function()\n'
                           '  local t = {} while true do t[#t + 1] = ("x"):rep(1000) .. #t end end))\n'
                           'return allow()',
    'memory_in_wrap': 'pcall(coroutine.wrap(function()\n'
                      '  local t = {} while true do t[#t + 1] = ("x"):rep(1000) .. #t end end))\n'
                      'return allow()',
    # Time spent in C library functions, which count as one instruction each.
    'pattern_find': 'return deny(tostring(("a"):rep(40):find("a*a*a*a*a*a*a*a*a*b")))',
    'pattern_gsub': 'return deny(tostring(("a"):rep(40):gsub("a-a-a-a-a-a-a-a-a-b", "")))',
    'pattern_gmatch': 'for m in ("a"):rep(40):gmatch("a*a*a*a*a*a*a*a*a*b") do end',
    'plain_find_loop': 'local big = ("x"):rep(1 << 23)\nfor i = 1, 1e9 do big:find("y", 1, true) end',
    'rep_loop': 'for i = 1, 1e9 do local x = ("x"):rep(1 << 20) end',
    'table_move': 'table.move({}, 1, math.maxinteger - 1, 2)',
    'table_insert_len': 'local t = setmetatable({}, { __len = function() return math.maxinteger - 1 end })\n'
                        'table.insert(t, 1, 0)',
    'table_remove_len': 'local t = setmetatable({}, { __len = function() return math.maxinteger - 1 end })\n'
                        'table.remove(t, 1)',
    # The shared string metatable.
    'string_metatable': 'getmetatable("").__index = function() return "pwned" end',
    'string_metatable_rawset': 'rawset(getmetatable(""), "__index", {})',
    'setmetatable_string': 'setmetatable("", {})',
    # Deep recursion.
    'recursion': 'local function f(...) return 1 + f(...) end\nreturn f(string.byte(("x"):rep(100), 1, -1)) --HERE',
    'recursion_gsub': 'local function f(s) return (string.gsub(s, ".", f)) end\nf("ab") --HERE',
    'recursion_sort': 'local function cmp(a, b) table.sort({ 3, 2, 1 }, cmp) return a < b end\n'
                      'table.sort({ 3, 2, 1 }, cmp) --HERE',
    'recursion_index': 'local t = setmetatable({}, { __index = function(t, k) return t[k .. "x"] end })\n'
                       'return t.a --HERE',
    'index_loop': 'local a, b = {}, {}\nsetmetatable(a, { __index = b })\nsetmetatable(b, { __index = a })\n'
                  'return a.x --HERE',
    'error_handler_recursion': 'local function loop() assert(pcall(loop)) end\n'
                               'local ok, msg = xpcall(loop, loop)\nerror(msg) --HERE',
    # Error objects and answers that are not what they seem.
    'error_table': 'error(setmetatable({}, { __tostring = function() error("nested") end }))',
    'error_nil': 'error()',
    'error_level0': 'error("plain words", 0)',
    'collectgarbage': 'collectgarbage("stop")',
    'answer_index': 'return setmetatable({}, { __index = function() error("boom") end })',
    'answer_len': 'return setmetatable({}, { __len = function() while true do end end })',
    'answer_item_index': 'return { setmetatable({}, { __index = function() while true do end end }) }',
    'sqlstate_injection': 'return deny{ sqlstate = "0\';--", message = "x" }',
    'many_decisions': 'local t = {}\nfor i = 1, 5000 do t[i] = warn("w" .. i) end\nreturn t',
}

# Attacks that are not policy failures: what the user sees instead.
ANSWERED = {
    'print_newline': 'print("line one\\nFAKE LOG LINE from a policy")\nreturn allow()',
    'huge_texts': 'return deny{ message = ("m"):rep(1e6), hint = ("h"):rep(1e7), detail = ("d"):rep(1e6) }',
    'bad_utf8': 'return deny("caf\\xe9 \\xff\\xfe end")',
    'dollar_quote': 'return deny("refused " .. stmt.objects[1].name)',
    'tree_swap': 'stmt.__tree_pb = "garbage"\nreturn deny("tree is " .. tostring(stmt.tree and stmt.tree.node_type))',
    'coroutine_ok': 'local co = coroutine.wrap(function(a) local b = coroutine.yield(a + 1) return b * 2 end)\n'
                    'local t = {} table.insert(t, 1) table.insert(t, 1, 0) table.move(t, 1, 2, 2)\n'
                    'local words = {} for w in ("a,b,,c"):gmatch("([^,]*)") do words[#words + 1] = w end\n'
                    'return deny(string.format("%d %d %s %s %s %s", co(1), co(5), table.concat(t, "."),\n'
                    '  table.concat(words, "/"), ("x"):rep(3, "-"), (("hello world"):gsub("o", "0"))))',
}


def build_policy():
    """The attack policy and the line each attack fails at."""
    lines = ['-- attacks.lua: each CREATE TABLE sbx_<name> runs attack <name>.', 'local A = {}']
    where = {}
    for name, body in list(ATTACKS.items()) + list(ANSWERED.items()):
        body_lines = body.split('\n')
        first = len(lines) + 2     # the function line, then the body
        lines.append(f'A["{name}"] = function(stmt, session)')
        here = first
        for i, bl in enumerate(body_lines):
            if '--HERE' in bl:
                here = first + i
            lines.append('  ' + bl)
        lines.append('end')
        where[name] = here
    lines += [
        'function on_statement(stmt, session)',
        '  local o = stmt.objects[1]',
        '  local name = o and o.name:match("^sbx_([%w_]+)")',
        '  if name and A[name] then return A[name](stmt, session) end',
        'end',
    ]
    return '\n'.join(lines) + '\n', where


# Two more policy files, around attacks.lua: one edits its string library, the other checks on
# every statement that the string library and string methods are what every policy must see.
EDITOR = r'''
function on_statement(stmt, session)
  if stmt.objects[1] and stmt.objects[1].name == "sbx_string_library_edit" then
    string.upper = function() return "pwned" end
    string.rep = nil
    string.new_field = true
  end
end
'''

OTHER = r'''
function on_statement(stmt, session)
  local ok = ("abc"):upper() == "ABC" and string.upper("abc") == "ABC" and ("x"):rep(2) == "xx"
    and string.rep("x", 2) == "xx" and getmetatable("") == nil and ("abc"):len() == 3
    and string.new_field == nil and ("").new_field == nil
  if not ok then return deny{ rule = "strings-intact", message = "the string library was tampered with" } end
end
'''


def write(name, text):
    path = os.path.join(subdir('policies'), name)
    with open(path, 'w') as f:
        f.write(text)
    return path


class SandboxCase(ProxyTestCase):
    """Helpers: run a statement through psql (bounded in time), check the proxy still serves."""

    def sql(self, proxy, script, timeout=30):
        """psql over one connection, errors not fatal, verbose errors (SQLSTATE shown)."""
        try:
            return subprocess.run([PSQL, '-X', '-At', '-v', 'VERBOSITY=verbose', '-d',
                                   self.conninfo(proxy=proxy)], input=script, capture_output=True,
                                  text=True, timeout=timeout,
                                  env=dict(os.environ, PGCONNECT_TIMEOUT='10'))
        except subprocess.TimeoutExpired:
            self.fail(f'ddlguard did not answer within {timeout}s '
                      f'(alive: {proxy.alive()}):\n{script}')

    def exists(self, name):
        return self.pg.query(f"SELECT to_regclass('{name}') IS NOT NULL")[0][0]

    def log_since(self, proxy, size):
        return proxy.log_text()[size:]

    def assertServes(self, proxy, bystander=None):
        """A new connection gets answers (a plain query and a guarded statement the policies
        allow), and a session that was open all along still works."""
        c = self.connect(proxy=proxy)
        with c.cursor() as cur:
            cur.execute('SELECT 40 + 2')
            self.assertEqual(cur.fetchone()[0], 42)
            cur.execute('CREATE TABLE IF NOT EXISTS sbx_fine (id int)')
        c.close()
        if bystander is not None:
            with bystander.cursor() as cur:
                cur.execute('SELECT count(*) FROM sbx_fine')
                self.assertEqual(cur.fetchone()[0], 0)


@proxy_only
class TestAttacks(SandboxCase):
    """Every attack in ATTACKS against one proxy, which must keep serving throughout."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        text, cls.lines = build_policy()
        cls.policy = write('attacks.lua', text)
        editor, other = write('editor.lua', EDITOR), write('other.lua', OTHER)
        cls.settings = {'policy_files': f'{editor}, {cls.policy}, {other}', 'server_tls_sslmode': 'disable',
                        'policy_memory_limit': '32'}
        cls.pg.psql_admin('DROP TABLE IF EXISTS sbx_fine; CREATE TABLE sbx_fine (id int); '
                          'GRANT ALL ON sbx_fine TO PUBLIC; GRANT CREATE ON SCHEMA public TO PUBLIC')

    def setUp(self):
        super().setUp()
        # A session that stays open across the attack, in the middle of a transaction.
        self.bystander = self.connect(autocommit=False)
        with self.bystander.cursor() as cur:
            cur.execute('SELECT count(*) FROM sbx_fine')
        fds = self.proxy.fd_count()
        # Runs last, once the test's connections are closed: ddlguard holds what it held
        # before the attack (the bystander's two descriptors less).
        self.addCleanup(self.no_descriptor_left, fds - 2)

    def no_descriptor_left(self, fds):
        if self.proxy is not None and self.proxy.alive():
            self.bystander.close()
            wait_for(lambda: self.proxy.fd_count() <= fds, 10,
                     what='descriptors back to their number before the attack')

    def attack(self, name, expect, line=True, timeout=30):
        size = self.proxy.log_size()
        t0 = time.monotonic()
        r = self.sql(self.proxy, f'CREATE TABLE sbx_{name} (id int);\n'
                                 "SELECT 'same connection ' || count(*) FROM sbx_fine;\n"
                                 'CREATE TABLE IF NOT EXISTS sbx_fine (id int);\n', timeout=timeout)
        elapsed = time.monotonic() - t0
        self.assertIn(f'ERROR:  42501: {FAILED}', r.stderr)
        detail = re.search(r'DETAIL:  (.*)', r.stderr)
        self.assertIsNotNone(detail, r.stderr)
        self.assertTrue(stop_reason(expect, detail.group(1)), detail.group(1))
        self.assertIn('attacks.lua:', detail.group(1))
        # The same connection goes on: the next statements of the script ran.
        self.assertIn('same connection 0', r.stdout)
        self.assertEqual(r.stderr.count('ERROR:'), 1, r.stderr)
        self.assertFalse(self.exists(f'sbx_{name}'))
        logged = [l for l in self.log_since(self.proxy, size).splitlines()
                  if 'policy failure (denied)' in l]
        self.assertEqual(len(logged), 1, self.log_since(self.proxy, size))
        self.assertTrue(stop_reason(expect, logged[0]), logged[0])
        if line:
            self.assertIn(f'attacks.lua:{self.lines[name]}:', logged[0])
        self.assertServes(self.proxy, self.bystander)
        return elapsed

    # -- reading files, running commands
    def test_io_open(self):
        self.attack('io_open', "attempt to index a nil value (global 'io')")

    def test_io_lines(self):
        self.attack('io_lines', "attempt to index a nil value (global 'io')")

    def test_io_popen(self):
        self.attack('io_popen', "attempt to index a nil value (global 'io')")

    def test_dofile(self):
        self.attack('dofile', "attempt to call a nil value (global 'dofile')")

    def test_loadfile(self):
        self.attack('loadfile', "attempt to call a nil value (global 'loadfile')")

    def test_require(self):
        self.attack('require', "attempt to call a nil value (global 'require')")

    def test_package_loadlib(self):
        self.attack('package_loadlib', "attempt to index a nil value (global 'package')")

    def test_os_execute(self):
        self.attack('os_execute', "attempt to call a nil value (field 'execute')")
        self.assertFalse(os.path.exists('/tmp/ddlguard-sandbox-pwned'))

    def test_os_getenv(self):
        self.attack('os_getenv', "attempt to call a nil value (field 'getenv')")

    def test_os_remove(self):
        self.attack('os_remove', "attempt to call a nil value (field 'remove')")

    def test_os_exit(self):
        self.attack('os_exit', "attempt to call a nil value (field 'exit')")

    def test_debug_getinfo(self):
        self.attack('debug_getinfo', "attempt to index a nil value (global 'debug')")

    def test_debug_sethook(self):
        self.attack('debug_sethook', "attempt to index a nil value (global 'debug')")

    def test_load_has_the_same_sandbox(self):
        # A chunk from load() runs in the policy's environment: no io there either.
        self.attack('load_reaches_io', "attempt to index a nil value (global 'io')", line=False)

    def test_collectgarbage(self):
        self.attack('collectgarbage', "attempt to call a nil value (global 'collectgarbage')")

    # -- bytecode
    def test_string_dump(self):
        self.attack('string_dump', "attempt to call a nil value (field 'dump')")

    def test_string_dump_through_a_string_method(self):
        # ("").dump reads Lua's own string table through the string metatable.
        self.attack('string_dump_method', "attempt to call a nil value (local 'dump')")

    def test_bytecode_literal(self):
        self.attack('bytecode_literal', "attempt to load a binary chunk (mode is 't')")

    def test_load_mode_b(self):
        self.attack('load_mode_b', "policies load text chunks only")

    def test_load_with_a_reader_function(self):
        self.attack('load_reader', "bad argument #1 to 'load' (string expected, got function)")

    # -- loops
    def test_infinite_loop(self):
        self.assertLess(self.attack('infinite_loop', 'instruction budget exceeded'), 10)

    def test_loop_in_pcall(self):
        self.attack('loop_in_pcall', 'instruction budget exceeded', line=False)

    def test_loop_in_xpcall(self):
        self.attack('loop_in_xpcall', 'instruction budget exceeded', line=False)

    def test_loop_in_a_coroutine_that_swallows_the_error(self):
        # coroutine.resume returns false instead of raising: the policy then answers allow().
        self.attack('loop_in_coroutine', 'instruction budget exceeded', line=False)

    def test_loop_in_coroutine_wrap(self):
        self.attack('loop_in_wrap', 'instruction budget exceeded', line=False)

    def test_coroutine_that_resumes_forever(self):
        self.attack('coroutine_forever', 'instruction budget exceeded', line=False)

    def test_yield_across_pcall(self):
        self.attack('yield_across_pcall', 'instruction budget exceeded', line=False)

    def test_short_coroutines_pay_for_their_instructions(self):
        # Each thread counts its own instructions; one that ends before its first thousand
        # would never be counted.
        self.attack('short_coroutines', 'instruction budget exceeded', line=False)

    def test_close_handler_loop(self):
        self.attack('close_handler_loop', 'instruction budget exceeded', line=False)

    def test_gc_finalizer(self):
        # Lua runs finalizers with hooks off, whenever the collector decides.
        self.attack('gc_finalizer', '__gc is not available to policies')

    # -- memory
    def test_table_growth(self):
        self.attack('table_growth', 'memory limit exceeded (32 MB, policy_memory_limit)', line=False)

    def test_concat_bomb(self):
        self.attack('concat_bomb', 'memory limit exceeded', line=False)

    def test_string_rep_too_large(self):
        self.attack('rep_too_large', 'resulting string too large')

    def test_string_rep_over_the_cap(self):
        self.attack('rep_over_cap', 'memory limit exceeded', line=False)

    def test_string_rep_with_separator(self):
        self.attack('rep_separator', 'memory limit exceeded', line=False)

    def test_memory_error_swallowed_by_a_coroutine(self):
        self.attack('memory_in_coroutine', 'memory limit exceeded', line=False)

    def test_memory_error_swallowed_by_coroutine_wrap_and_pcall(self):
        # coroutine.wrap turns the memory error into an ordinary one, which pcall catches.
        self.attack('memory_in_wrap', 'memory limit exceeded', line=False)

    # -- time in C library functions
    def test_pattern_backtracking_in_find(self):
        self.assertLess(self.attack('pattern_find', 'time limit exceeded (1000 ms, policy_time_limit)'), 5)

    def test_pattern_backtracking_in_gsub(self):
        self.assertLess(self.attack('pattern_gsub', 'time limit exceeded'), 5)

    def test_pattern_backtracking_in_gmatch(self):
        self.assertLess(self.attack('pattern_gmatch', 'time limit exceeded'), 5)

    def test_plain_find_over_a_big_string_in_a_loop(self):
        self.assertLess(self.attack('plain_find_loop', 'time limit exceeded', line=False), 5)

    def test_string_rep_in_a_loop(self):
        self.assertLess(self.attack('rep_loop', 'time limit exceeded', line=False), 5)

    def test_table_move_of_a_huge_range(self):
        self.assertLess(self.attack('table_move', 'time limit exceeded'), 5)

    def test_table_insert_with_a_lying_length(self):
        self.assertLess(self.attack('table_insert_len', 'time limit exceeded', line=False), 5)

    def test_table_remove_with_a_lying_length(self):
        self.assertLess(self.attack('table_remove_len', 'time limit exceeded', line=False), 5)

    # -- the shared string metatable
    def test_string_metatable_index(self):
        self.attack('string_metatable', 'attempt to index a nil value')

    def test_string_metatable_rawset(self):
        self.attack('string_metatable_rawset', "bad argument #1 to 'rawset' (table expected, got nil)")

    def test_setmetatable_on_a_string(self):
        self.attack('setmetatable_string', "bad argument #1 to 'setmetatable' (table expected, got string)")

    def test_string_library_edit_stays_in_its_policy(self):
        # One policy replaces string.upper and removes string.rep in its own copy; the other
        # policy (other.lua) checks both, and string methods, on every statement.
        r = self.sql(self.proxy, 'CREATE TABLE sbx_string_library_edit (id int);\n'
                                 'DROP TABLE sbx_string_library_edit;\n'
                                 'CREATE TABLE IF NOT EXISTS sbx_fine (id int);\n')
        self.assertNotIn('ERROR', r.stderr)
        self.assertServes(self.proxy, self.bystander)

    # -- deep recursion
    def test_lua_recursion(self):
        self.attack('recursion', 'stack overflow', line=False)

    def test_recursion_through_gsub(self):
        self.attack('recursion_gsub', 'stack overflow', line=False)

    def test_recursion_through_a_sort_comparator(self):
        self.attack('recursion_sort', 'stack overflow', line=False)

    def test_recursion_through_index(self):
        self.attack('recursion_index', 'stack overflow', line=False)

    def test_index_chain_loop(self):
        self.attack('index_loop', "'__index' chain too long; possible loop")

    def test_recursion_in_the_error_handler(self):
        # The pattern of CVE-2022-33099 (patched in Debian's Lua): errors while handling errors.
        self.attack('error_handler_recursion', 'attacks.lua:', line=False)

    # -- error objects and answers
    def test_error_object_with_a_failing_tostring(self):
        # Never converted with __tostring (the policy's code, which may fail or loop).
        self.attack('error_table', '(error object is a table value)')

    def test_error_without_an_object(self):
        self.attack('error_nil', '(error object is a nil value)')

    def test_error_without_a_position_names_the_file(self):
        self.attack('error_level0', 'attacks.lua: plain words', line=False)

    def test_answer_with_an_index_metamethod(self):
        self.attack('answer_index', 'returned a table with a metatable', line=False)

    def test_answer_with_a_looping_len(self):
        self.attack('answer_len', 'returned a table with a metatable', line=False)

    def test_answer_list_item_with_a_metatable(self):
        self.attack('answer_item_index', 'something that is not a decision', line=False)

    def test_sqlstate_that_is_not_one(self):
        # The SQLSTATE goes into the statement ddlguard makes the server fail with.
        self.attack('sqlstate_injection', 'sqlstate must be 5 digits or upper-case letters', line=False)

    def test_too_many_decisions(self):
        self.attack('many_decisions', 'returned a list of more than 1000 decisions', line=False)

    # -- answers that are decisions, with hostile contents
    def denied_with(self, name, extra=''):
        r = self.sql(self.proxy, f'CREATE TABLE {name} (id int);\n{extra}'
                                 "SELECT 'same connection ' || count(*) FROM sbx_fine;\n")
        self.assertIn('same connection 0', r.stdout, r.stderr)
        self.assertServes(self.proxy, self.bystander)
        return r

    def test_huge_texts_are_cut(self):
        c = self.connect()
        with self.assertRaises(psycopg2.Error) as cm:
            with c.cursor() as cur:
                cur.execute('CREATE TABLE sbx_huge_texts (id int)')
        e = cm.exception
        self.assertEqual(e.pgcode, '42501')
        self.assertTrue(e.diag.message_primary.startswith('mmmm'), e.diag.message_primary[:50])
        self.assertLess(len(e.diag.message_primary), 1100)
        self.assertLess(len(e.diag.message_hint), 1100)
        self.assertLess(len(e.diag.message_detail), 1200)
        self.assertServes(self.proxy, self.bystander)

    def test_bytes_that_are_not_utf8(self):
        r = self.denied_with('sbx_bad_utf8')
        self.assertIn('ERROR:  42501: caf? ?? end (ddlguard: attacks)', r.stderr)

    def test_policy_message_with_the_poison_block_quote(self):
        # The deny travels inside a DO $ddlguard$ … $ddlguard$ block: a message holding that
        # quote (here the table's name) must not end the block early.
        r = self.denied_with('"sbx_dollar_quote$ddlguard$; SELECT 1; --"')
        self.assertIn('ERROR:  42501: refused sbx_dollar_quote$ddlguard$; SELECT 1; -- (ddlguard: attacks)', r.stderr)

    def test_print_cannot_forge_log_lines(self):
        size = self.proxy.log_size()
        r = self.sql(self.proxy, 'CREATE TABLE sbx_print_newline (id int);\nDROP TABLE sbx_print_newline;\n')
        self.assertNotIn('ERROR', r.stderr)
        log = self.log_since(self.proxy, size)
        self.assertIn('policy attacks: line one\\nFAKE LOG LINE from a policy', log)
        self.assertFalse(any(l.startswith('FAKE') for l in log.splitlines()), log)

    def test_parse_tree_bytes_are_out_of_reach(self):
        # stmt.tree is unpacked from bytes the policy cannot replace: protobuf-c would unpack
        # whatever it is given (deep nesting overflows the stack; see TestBigBudget).
        r = self.denied_with('sbx_tree_swap')
        self.assertIn('ERROR:  42501: tree is CreateStmt (ddlguard: attacks)', r.stderr)

    def test_library_functions_still_behave_like_lua(self):
        r = self.denied_with('sbx_coroutine_ok')
        self.assertIn('ERROR:  42501: 2 10 0.0.1 a/b//c x-x-x hell0 w0rld (ddlguard: attacks)', r.stderr)


@proxy_only
class TestBigBudget(SandboxCase):
    """Attacks that need more instructions than the default budget allows."""

    class_proxy = False

    def start(self, name, text):
        path = write(f'{name}.lua', text)
        return self.start_proxy({'policy_files': path, 'server_tls_sslmode': 'disable',
                                 'policy_instruction_budget': '100000000', 'policy_time_limit': '60s'})

    CLOSE_CHAIN = '''
local function chain()
  local coro = false
  for i = 1, 15000 do
    local previous = coro
    coro = coroutine.create(function()
      local cc <close> = setmetatable({}, { __close = function()
        local ok, err = coroutine.close(previous or coroutine.create(print))
        if not ok then error(err, 0) end
      end })
      coroutine.yield()
    end)
    assert(coroutine.resume(coro))
  end
  local ok, err = coroutine.close(coro)
  if not ok then error(err, 0) end
end
'''

    def test_nested_coroutine_close(self):
        # Lua 5.4.4 runs a closed coroutine's __close handlers without counting the caller's
        # C levels: a chain of coroutines, each closing the previous one, overflows the C stack.
        p = self.start('close_chain', self.CLOSE_CHAIN + 'function on_statement(stmt)\n'
                       '  if stmt.objects[1] and stmt.objects[1].name == "sbx_chain" then chain() end\nend\n')
        r = self.sql(p, 'CREATE TABLE sbx_chain (id int);\n')
        self.assertIn('ERROR:  42501: ddlguard could not evaluate policy "close_chain"', r.stderr)
        self.assertIn('coroutine.close: nested more than 40 deep', r.stderr)
        self.assertServes(p)

    def test_nested_coroutine_close_on_reload(self):
        # The same at the top level of a file that a SIGHUP loads into the running proxy.
        p = self.start('close_reload', 'function on_statement(s) if s.tag == "DROP TABLE" then return deny("v1") end end\n')
        with open(os.path.join(subdir('policies'), 'close_reload.lua'), 'w') as f:
            f.write(self.CLOSE_CHAIN + 'chain()\nfunction on_statement(s) return deny("v2") end\n')
        size = p.log_size()
        p.signal(signal.SIGHUP)
        wait_for(lambda: 'reload failed' in p.log_text()[size:], 20, what='reload failure logged')
        self.assertIn('nested more than 40 deep', p.log_text()[size:])
        self.assertIn('v1', self.sql(p, 'DROP TABLE IF EXISTS sbx_nothing;\n').stderr)
        self.assertServes(p)

    def test_deeply_nested_parse_tree_bytes(self):
        p = self.start('tree_bomb', r'''
local function varint(n)
  local out = {}
  repeat
    local b = n % 128
    n = n // 128
    out[#out + 1] = string.char(n > 0 and b + 128 or b)
  until n == 0
  return table.concat(out)
end
-- A ParseResult whose statement is a List holding a List holding a List …
local function nested(depth)
  local heads, size = {}, 0
  for i = 1, depth do
    local list = 1 + #varint(size) + size
    heads[depth - i + 1] = "\xda\x0e" .. varint(list) .. "\x0a" .. varint(size)
    size = 2 + #varint(list) + list
  end
  local raw = "\x0a" .. varint(size) .. table.concat(heads)
  return "\x12" .. varint(#raw) .. raw
end
function on_statement(stmt)
  if stmt.objects[1] and stmt.objects[1].name == "sbx_tree" then
    stmt.__tree_pb = nested(60000)
    return deny("tree is " .. tostring(stmt.tree and stmt.tree.node_type))
  end
end
''')
        r = self.sql(p, 'CREATE TABLE sbx_tree (id int);\n')
        self.assertIn('ERROR:  42501: tree is CreateStmt', r.stderr)
        self.assertServes(p)


@proxy_only
class TestMemoryOfTheCall(SandboxCase):
    """The memory cap covers all of a call, ddlguard's own work for it included (building
    stmt and session): a call that cannot get memory fails, and fails closed."""

    class_proxy = False

    def test_statement_larger_than_the_cap(self):
        # stmt.text alone does not fit in the policies' memory.
        path = write('small.lua', 'function on_statement(stmt) end\n')
        p = self.start_proxy({'policy_files': path, 'server_tls_sslmode': 'disable',
                              'policy_memory_limit': '4'})
        big = 'x' * (6 << 20)
        r = self.sql(p, f"COMMENT ON TABLE sbx_fine IS '{big}';\nSELECT 'plain ' || 1;\n")
        self.assertIn('ERROR:  42501: ddlguard could not evaluate policy "small"', r.stderr)
        self.assertIn('small.lua: memory limit exceeded (4 MB, policy_memory_limit)', r.stderr)
        self.assertIn('plain 1', r.stdout)
        self.assertIn('policy failure (denied): small.lua: memory limit exceeded', p.log_text())
        self.assertServes(p)

    def test_garbage_near_the_cap_is_collected_first(self):
        # 12 MB kept and 1 MB strings made and dropped under a 16 MB cap, three times: what
        # an earlier call left is collected before the next one, a refused allocation is
        # asked again after a collection, and only a second refusal fails the call.
        path = write('churn.lua', '''
function on_statement(stmt)
  local live = {}
  for i = 1, 12 do live[i] = ("x"):rep(1 << 20) .. i end
  for i = 1, 50 do local garbage = ("y"):rep(1 << 19) .. i end
  return warn("kept " .. #live .. " MB")
end
''')
        p = self.start_proxy({'policy_files': path, 'server_tls_sslmode': 'disable',
                              'policy_memory_limit': '16', 'policy_time_limit': '20s'})
        c = self.connect(proxy=p)
        for _ in range(3):
            with c.cursor() as cur:
                cur.execute('CREATE TABLE IF NOT EXISTS sbx_fine (id int)')
            self.assertTrue(any('kept 12 MB' in n for n in c.notices[-2:]), c.notices)

    def test_state_kept_full_by_a_policy(self):
        # The policy keeps what it allocated in a global: its calls fail from then on; the
        # proxy, and the statements no policy sees, go on.
        path = write('hog.lua', '''
function on_statement(stmt)
  if stmt.objects[1] and stmt.objects[1].name == "sbx_hog" then
    while true do HOG = { HOG, ("x"):rep(4096) .. tostring(HOG) } end
  end
end
''')
        p = self.start_proxy({'policy_files': path, 'server_tls_sslmode': 'disable',
                              'policy_memory_limit': '16'})
        r = self.sql(p, 'CREATE TABLE sbx_hog (id int);\nCREATE TABLE sbx_hog (id int);\n'
                        "SELECT 'plain ' || 1;\n")
        self.assertEqual(r.stderr.count('hog.lua: memory limit exceeded (16 MB, policy_memory_limit)'), 2, r.stderr)
        self.assertIn('plain 1', r.stdout)
        self.assertFalse(self.exists('sbx_hog'))
        c = self.connect(proxy=p)
        with c.cursor() as cur:
            cur.execute('SELECT 1')


@proxy_only
class TestPolicyState(SandboxCase):
    """Globals persist across statements and sessions (one Lua state per process: docs say
    so); what ddlguard hands a policy about a session is that session's alone."""

    class_proxy = False

    def test_globals_are_shared_session_data_is_not(self):
        path = write('state.lua', '''
SEEN = 0
function on_statement(stmt, session)
  SEEN = SEEN + 1
  local o = stmt.objects[1]
  if o and o.name:match("^sbx_probe") then
    return warn(string.format("seen %d, created sbx_mine %s, statements %d", SEEN,
      tostring(created_in_session(session, "sbx_mine")), #session.statements))
  end
end
''')
        p = self.start_proxy({'policy_files': path, 'server_tls_sslmode': 'disable'})
        a = self.connect(proxy=p, autocommit=False)
        with a.cursor() as cur:
            cur.execute('CREATE TABLE sbx_mine (id int)')
            cur.execute('CREATE TABLE sbx_probe_a (id int)')
        self.assertIn('seen 2, created sbx_mine true, statements 1', a.notices[-1])
        b = self.connect(proxy=p, autocommit=False)
        with b.cursor() as cur:
            cur.execute('CREATE TABLE sbx_probe_b (id int)')
        b.rollback()
        # The counter is shared; session a's table and statements are not b's.
        self.assertIn('seen 3, created sbx_mine false, statements 0', b.notices[-1])
        a.rollback()


@proxy_only
class TestFailOpen(SandboxCase):
    """policy_failure = open: the statement runs, the failure is logged."""

    class_proxy = False

    def test_attacks_allowed_and_logged(self):
        text, lines = build_policy()
        path = write('attacks.lua', text)
        p = self.start_proxy({'policy_files': path, 'server_tls_sslmode': 'disable',
                              'policy_failure': 'open', 'policy_memory_limit': '32'})
        for name, expect in (('infinite_loop', 'instruction budget exceeded'),
                             ('io_open', "global 'io'"),
                             ('memory_in_coroutine', 'memory limit exceeded'),
                             ('pattern_find', 'time limit exceeded')):
            with self.subTest(attack=name):
                size = p.log_size()
                r = self.sql(p, f'CREATE TABLE sbx_{name} (id int);\nDROP TABLE sbx_{name};\n')
                self.assertEqual(r.stderr, '')
                log = self.log_since(p, size)
                self.assertIn('policy failure (allowed)', log)
                self.assertTrue(stop_reason(expect, log), log)
        self.assertServes(p)


@proxy_only
class TestLoadTime(SandboxCase):
    """Attacks in a policy file's main chunk: ddlguard refuses to start with it, and a running
    ddlguard keeps its old policy when a reload brings it in."""

    class_proxy = False

    CHUNKS = {
        'io_open': ('local f = io.open("/etc/passwd")', "attempt to index a nil value (global 'io')"),
        'os_execute': ('os.execute("id")', "attempt to call a nil value (field 'execute')"),
        'require': ('require("io")', "attempt to call a nil value (global 'require')"),
        'bytecode': ('assert(load("\\27Lua\\84\\0"))', "attempt to load a binary chunk"),
        'loop': ('while true do end', 'instruction budget exceeded'),
        'memory': ('local t = {} while true do t[#t + 1] = ("x"):rep(4096) end', 'memory limit exceeded'),
        'finalizer': ('setmetatable({}, { __gc = function() while true do end end })', '__gc is not available'),
        'pattern': ('local x = ("a"):rep(40):find("a*a*a*a*a*a*a*a*a*b")', 'time limit exceeded'),
    }

    def config(self, path):
        cfg = os.path.join(subdir('policies'), 'load_time.ini')
        with open(cfg, 'w') as f:
            f.write(f'[ddlguard]\npolicy_files = {path}\npolicy_memory_limit = 16\n'
                    f'[databases]\n* = host=127.0.0.1 port={self.pg.port}\n')
        return cfg

    def test_refuses_to_start(self):
        for name, (chunk, expect) in self.CHUNKS.items():
            with self.subTest(attack=name):
                path = write(f'load_{name}.lua', f'{chunk}\nfunction on_statement(s) end\n')
                r = run([ddlguard_bin(), '-c', self.config(path), '--check'], check=False, timeout=30)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn('cannot load policies', r.stderr)
                self.assertIn(f'load_{name}.lua', r.stderr)
                self.assertTrue(stop_reason(expect, r.stderr), r.stderr)

    def test_reload_keeps_the_old_policy(self):
        path = write('reloaded.lua', 'function on_statement(s) if s.tag == "DROP TABLE" then return deny("v1") end end\n')
        p = self.start_proxy({'policy_files': path, 'server_tls_sslmode': 'disable', 'policy_memory_limit': '16'})
        for name, (chunk, expect) in self.CHUNKS.items():
            with self.subTest(attack=name):
                with open(path, 'w') as f:
                    f.write(f'{chunk}\nfunction on_statement(s) return deny("v2") end\n')
                size = p.log_size()
                p.signal(signal.SIGHUP)
                wait_for(lambda: 'reload failed' in p.log_text()[size:], 20, what='reload failure logged')
                self.assertTrue(stop_reason(expect, p.log_text()[size:]), p.log_text()[size:])
                r = self.sql(p, 'DROP TABLE IF EXISTS sbx_nothing;\n')
                self.assertIn('v1', r.stderr)
        self.assertServes(p)

    def test_environment_metatable(self):
        # A file may give its environment a metatable: ddlguard reads its hooks raw, so loading
        # runs none of it; a policy that then trips over it fails like any other.
        path = write('env_meta.lua', '''
function on_statement(s) if s.tag == "DROP TABLE" then return no_such_global end end
setmetatable(_ENV, { __index = function() while true do end end })
''')
        p = self.start_proxy({'policy_files': path, 'server_tls_sslmode': 'disable'})
        r = self.sql(p, 'DROP TABLE IF EXISTS sbx_nothing;\n')
        self.assertIn('ERROR:  42501: ddlguard could not evaluate policy "env_meta"', r.stderr)
        self.assertTrue(stop_reason('instruction budget exceeded', r.stderr), r.stderr)
        self.assertServes(p)

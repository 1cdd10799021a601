#!/usr/bin/env bash
# Builds ddlguard (normal and AddressSanitizer builds), then runs every test suite:
#   unit         cmocka, `make check` in the ASan+UBSan build, leaks fail (no network)
#   lua          the rule library's cases, through `ddlguard check`
#   integration  a real PostgreSQL 15 started by the harness, driven through the ASan
#                build of ddlguard with psql, libpq, psycopg2 and JDBC
#   clients      real migration tools through ddlguard (tests/clients; docs/clients.md)
# Ends with one line "N passed, N failed" counting every test of every suite.
set -uo pipefail
cd "$(dirname "$0")/.."
passed=0
failed=0
summary() {
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit $?
}

echo "== build"
if ! bash scripts/build.sh --asan; then
	echo "build failed"
	failed=$((failed + 1))
	summary
fi

# Unit tests run in the AddressSanitizer+UBSan build: a leak, an invalid access or undefined
# behaviour fails the program (no cmocka summary, or a non-zero exit), so the run.
echo "== unit tests (make check, AddressSanitizer + UndefinedBehaviorSanitizer + LeakSanitizer)"
rm -f build-asan/tests/unit/*.log
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=23 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=24 \
	make -s -C build-asan -j"$(nproc)" check >/tmp/ddlguard-unit.$$ 2>&1
unit_rc=$?
for log in build-asan/tests/unit/*.log; do
	[ -f "$log" ] || continue
	grep -E '^\[  (FAILED|ERROR|  OK  )|^\[==========\]|^\[  PASSED  \]' "$log" | grep -E 'FAILED|ERROR' | sed "s|^|$(basename "$log" .log): |"
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
	passed=$((passed + ${p:-0}))
	failed=$((failed + ${f:-0}))
	# A program that crashed prints no summary: count it as one failure.
	if ! grep -q '^\[  PASSED  \]\|^\[  FAILED  \]' "$log"; then
		echo "$(basename "$log" .log): no cmocka summary (crashed?)"
		failed=$((failed + 1))
	elif grep -q 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:' "$log"; then
		echo "$(basename "$log" .log): sanitizer report:"
		grep -A30 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:' "$log" | head -60
		failed=$((failed + 1))
	fi
done
if [ $unit_rc -ne 0 ] && ! ls build-asan/tests/unit/*.log >/dev/null 2>&1; then
	cat /tmp/ddlguard-unit.$$
	echo "unit tests did not build"
	failed=$((failed + 1))
fi
rm -f /tmp/ddlguard-unit.$$
echo "unit: $passed passed, $failed failed"

echo "== rule library tests (tests/lua through ddlguard check)"
out=$(mktemp)
/usr/bin/python3 tests/lua/run.py "$PWD/build/ddlguard" 2>&1 | tee "$out"
line=$(grep -E '^lua: [0-9]+ passed, [0-9]+ failed' "$out" | tail -1)
if [ -n "$line" ]; then
	passed=$((passed + $(echo "$line" | sed -E 's/^lua: ([0-9]+) passed.*/\1/')))
	failed=$((failed + $(echo "$line" | sed -E 's/^lua: [0-9]+ passed, ([0-9]+) failed.*/\1/')))
else
	echo "rule library runner printed no summary"
	failed=$((failed + 1))
fi
rm -f "$out"

# run_suite LABEL TITLE COMMAND…: runs a python suite, adds its "LABEL: N passed, N failed".
run_suite() {
	local label=$1 title=$2 out line sp sf
	shift 2
	echo "== $title"
	out=$(mktemp)
	DDLGUARD_BIN="$PWD/build-asan/ddlguard" "$@" 2>&1 | tee "$out"
	line=$(grep -E "^$label: [0-9]+ passed, [0-9]+ failed" "$out" | tail -1)
	if [ -n "$line" ]; then
		sp=$(echo "$line" | sed -E "s/^$label: ([0-9]+) passed.*/\1/")
		sf=$(echo "$line" | sed -E "s/^$label: [0-9]+ passed, ([0-9]+) failed.*/\1/")
	else
		echo "$label runner printed no summary"
		sp=0
		sf=1
	fi
	rm -f "$out"
	passed=$((passed + sp))
	failed=$((failed + sf))
}

run_suite integration "integration tests (real PostgreSQL 15, ASan build of ddlguard)" \
	/usr/bin/python3 tests/integration/run.py
run_suite fuzz "fuzzing (libFuzzer, ASan+UBSan, 60 s per target; tests/fuzz)" bash tests/fuzz/run.sh
# The migration tools (Debian packages and npm, installed by the runner) through ddlguard.
run_suite clients "migration tools (tests/clients: psql, Alembic, Django, ActiveRecord, sqitch, JDBC, knex, node-pg-migrate, Liquibase, dbmate)" \
	/usr/bin/python3 tests/clients/run.py
summary

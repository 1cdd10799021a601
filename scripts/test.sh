#!/usr/bin/env bash
# Builds ddlguard (normal and AddressSanitizer builds), then runs every test suite:
#   unit         cmocka, `make check` (no network)
#   lua          the rule library's cases, through `ddlguard check`
#   integration  a real PostgreSQL 15 started by the harness, driven through the ASan
#                build of ddlguard with psql, libpq, psycopg2 and JDBC
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

echo "== unit tests (make check)"
make -s -C build -j"$(nproc)" check >/tmp/ddlguard-unit.$$ 2>&1
unit_rc=$?
for log in build/tests/unit/*.log; do
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
	fi
done
if [ $unit_rc -ne 0 ] && ! ls build/tests/unit/*.log >/dev/null 2>&1; then
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

echo "== integration tests (real PostgreSQL 15, ASan build of ddlguard)"
ipass=0
ifail=0
out=$(mktemp)
DDLGUARD_BIN="$PWD/build-asan/ddlguard" /usr/bin/python3 tests/integration/run.py 2>&1 | tee "$out"
line=$(grep -E '^integration: [0-9]+ passed, [0-9]+ failed' "$out" | tail -1)
if [ -n "$line" ]; then
	ipass=$(echo "$line" | sed -E 's/^integration: ([0-9]+) passed.*/\1/')
	ifail=$(echo "$line" | sed -E 's/^integration: [0-9]+ passed, ([0-9]+) failed.*/\1/')
else
	echo "integration runner printed no summary"
	ifail=1
fi
rm -f "$out"
passed=$((passed + ipass))
failed=$((failed + ifail))
summary

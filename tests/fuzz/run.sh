#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan), replays every regression input and the
# seed corpus of each target, then fuzzes each target for a bounded time on a scratch copy
# of its corpus. See tests/fuzz/README.md.
#
#   bash tests/fuzz/run.sh [--time SECONDS] [--runs N] [--parallel N] [target...]
#       --time S       fuzz each target S seconds (default 60); 36000 runs ten hours
#       --runs N       stop each target after N executions instead (or whichever comes first)
#       --parallel N   targets fuzzed at the same time (default 2)
#       --no-fuzz      only build and replay
#       --minimize     rebuild tests/fuzz/corpus/<target>/ from itself and the captured seeds in
#                      tests/fuzz/work/seeds/ (capture.py collect), keeping what adds coverage
#
# Prints one line per test (a replay and a fuzzing run per target) and ends with
# "fuzz: N passed, N failed"; exits 0 only if nothing failed. A crash prints the input's
# path (under tests/fuzz/work/crashes/, outside git) and the sanitizer's report with the stack.
set -uo pipefail
cd "$(dirname "$0")/../.."
FUZZ=tests/fuzz
WORK=$FUZZ/work
ALL_TARGETS=(fuzz_pgw_header fuzz_pgw_startup fuzz_pgw_error fuzz_pgw_sasl fuzz_scram fuzz_relay
	     fuzz_statement fuzz_policy)

time_s=60
runs=
parallel=2
fuzz=1
minimize=0
targets=()
while [ $# -gt 0 ]; do
	case $1 in
	--time) time_s=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--parallel) parallel=$2; shift 2 ;;
	--no-fuzz) fuzz=0; shift ;;
	--minimize) minimize=1; shift ;;
	-h|--help) sed -n '2,18p' "$0"; exit 0 ;;
	-*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
	*) targets+=("$1"); shift ;;
	esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")
for t in "${targets[@]}"; do
	case " ${ALL_TARGETS[*]} " in
	*" $t "*) ;;
	*) echo "run.sh: unknown target $t (targets: ${ALL_TARGETS[*]})" >&2; exit 2 ;;
	esac
done

passed=0
failed=0
finish() {
	echo "fuzz: $passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit $?
}

# Inputs larger than this are not generated (seeds are smaller). The SQL and relay
# targets need room for whole migrations and conversations.
max_len() {
	case $1 in
	fuzz_relay|fuzz_statement|fuzz_policy) echo 8192 ;;
	*) echo 4096 ;;
	esac
}
# Per-input leak detection (libFuzzer re-runs an input under LeakSanitizer whenever it
# mallocs more than it frees). The policy engine's Lua heap keeps garbage and session caches
# across inputs, so every fuzz_policy input would pay a scan of the whole heap (about 40 ms):
# there, leaks are found by LeakSanitizer at the end of the run instead, which fails it too.
leaks_of() {
	case $1 in
	fuzz_policy) echo 0 ;;
	*) echo 1 ;;
	esac
}
dict_of() {
	case $1 in
	fuzz_statement|fuzz_policy) echo "-dict=$FUZZ/sql.dict" ;;
	esac
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
[ -x /usr/lib/llvm-14/bin/llvm-symbolizer ] && export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer

echo "== build (clang -fsanitize=fuzzer,address,undefined; $WORK/bin)"
mkdir -p "$WORK"
# One run at a time in this checkout (they share work/): a second one waits.
exec 9>"$WORK/.lock"
if ! flock -n 9; then
	echo "run.sh: another fuzz run is using $WORK; waiting for it"
	flock 9
fi
if ! bash scripts/install-deps.sh >"$WORK/deps.log" 2>&1; then
	cat "$WORK/deps.log"
	echo "install-deps failed"
	failed=$((failed + 1))
	finish
fi
if ! make -s -f $FUZZ/fuzz.mk -j2 >"$WORK/build.log" 2>&1; then
	tail -40 "$WORK/build.log"
	echo "fuzz targets did not build"
	failed=$((failed + 1))
	finish
fi

# report LOG: the crash input and the sanitizer's report, from a libFuzzer log.
report() {
	local log=$1
	grep -E '^(artifact_prefix|Test unit written|fuzz check failed)' "$log" | sed 's/^/    /'
	sed -n '/^==[0-9]*==ERROR\|runtime error:\|^fuzz check failed\|^INFO: a leak has been found/,$p' "$log" |
		grep -v '^MS: \|^0x\|^Base64\|^\\\|^stat::\|^INFO: to ignore' | head -60 | sed 's/^/    /'
}

# Stats from a libFuzzer log (-print_final_stats=1): runs, exec/s, coverage, corpus.
stats() {
	local log=$1 r e c f n
	r=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	e=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	c=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
	f=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
	n=$(grep -oE 'corp: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
	echo "${r:-?} runs, ${e:-?} exec/s, cov ${c:-?}, ft ${f:-?}, corpus ${n:-?}"
}

if [ $minimize = 1 ]; then
	echo "== minimize corpora (merge tests/fuzz/corpus and $WORK/seeds)"
	for t in "${targets[@]}"; do
		new=$WORK/minimize/$t
		rm -rf "$new"
		mkdir -p "$new" $FUZZ/corpus/$t
		"$WORK/bin/$t" -merge=1 -use_counters=0 -max_len="$(max_len $t)" -timeout=10 "$new" $FUZZ/corpus/$t \
			"$WORK/seeds/$t" >"$WORK/minimize/$t.log" 2>&1 || { echo "$t: merge failed"; report "$WORK/minimize/$t.log"; continue; }
		rm -rf $FUZZ/corpus/$t
		mv "$new" $FUZZ/corpus/$t
		echo "$t: $(ls $FUZZ/corpus/$t | wc -l) inputs, $(du -sk $FUZZ/corpus/$t | cut -f1) KB"
	done
fi

# Replay: every regression input and every seed must run clean.
echo "== replay (tests/fuzz/regressions and tests/fuzz/corpus)"
mkdir -p "$WORK/crashes" "$WORK/logs"
for t in "${targets[@]}"; do
	dirs=()
	for d in $FUZZ/regressions/$t $FUZZ/corpus/$t; do
		[ -d "$d" ] && [ -n "$(ls -A "$d")" ] && dirs+=("$d")
	done
	log=$WORK/logs/$t.replay.log
	if [ ${#dirs[@]} -eq 0 ]; then
		echo "replay $t: FAILED (no corpus and no regressions)"
		failed=$((failed + 1))
		continue
	fi
	n=$(find "${dirs[@]}" -type f | wc -l)
	mkdir -p "$WORK/crashes/$t"
	# Each file is run as given (files, not directories: -runs=0 would skip inputs
	# longer than -max_len).
	if "$WORK/bin/$t" -detect_leaks=1 -timeout=25 -rss_limit_mb=4096 $(dict_of $t) \
		-artifact_prefix="$WORK/crashes/$t/" $(find "${dirs[@]}" -type f | sort) >"$log" 2>&1; then
		echo "replay $t: ok ($n inputs)"
		passed=$((passed + 1))
	else
		echo "replay $t: FAILED"
		last=$(grep -oE '^Running: .*' "$log" | tail -1 | sed 's/^Running: //')
		[ -n "$last" ] && echo "    crashing input: $last"
		report "$log"
		echo "    full log: $log"
		failed=$((failed + 1))
	fi
done
[ $fuzz = 1 ] || finish

# Fuzz: each target on a scratch copy of its corpus; at most $parallel at a time.
echo "== fuzz (${time_s}s per target${runs:+, at most $runs runs}, $parallel at a time)"
fuzz_one() {
	local t=$1 scratch=$WORK/run/$t log=$WORK/logs/$t.fuzz.log
	rm -rf "$scratch"
	mkdir -p "$scratch" "$WORK/crashes/$t"
	cp $FUZZ/corpus/$t/* "$scratch/" 2>/dev/null
	"$WORK/bin/$t" -detect_leaks="$(leaks_of $t)" -max_total_time="$time_s" ${runs:+-runs=$runs} \
		-max_len="$(max_len $t)" -timeout=25 -rss_limit_mb=4096 $(dict_of $t) -print_final_stats=1 \
		-artifact_prefix="$WORK/crashes/$t/" "$scratch" >"$log" 2>&1
	echo $? >"$log.rc"
}
pids=()
for t in "${targets[@]}"; do
	while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do
		wait -n
	done
	fuzz_one "$t" &
	pids+=($!)
done
wait
for t in "${targets[@]}"; do
	log=$WORK/logs/$t.fuzz.log
	rc=$(cat "$log.rc" 2>/dev/null || echo 1)
	if [ "$rc" = 0 ] && ! grep -q 'Test unit written\|ERROR: LeakSanitizer' "$log"; then
		echo "fuzz $t: ok ($(stats "$log"))"
		passed=$((passed + 1))
	else
		echo "fuzz $t: FAILED (exit $rc; $(stats "$log"))"
		[ "$(leaks_of $t)" = 0 ] && grep -q 'ERROR: LeakSanitizer' "$log" &&
			echo "    a leak found at the end of the run: the input is not known; replay $WORK/run/$t with -detect_leaks=1 to find it"
		report "$log"
		echo "    full log: $log"
		echo "    to keep it as a regression: cp <crash input> tests/fuzz/regressions/$t/<what-it-is>"
		failed=$((failed + 1))
	fi
done
finish

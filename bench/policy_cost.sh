#!/usr/bin/env bash
# What policies cost. Two measurements, printed as a Markdown table (and written to
# bench/results/policy_cost.md):
#
#  1. Analysis + policy evaluation per DDL statement: `ddlguard check` over N generated DDL
#     statements (a realistic mix) with the full default rule library (rules = default)
#     plus the policy file below, minus the same run with a policy that allows everything
#     (which still parses and marshals each statement), and the total per statement. CPU
#     time of one process: the least noisy number we have.
#  2. pgbench -S (simple and prepared, 1 and 8 clients) through ddlguard with the default
#     library and the policy file loaded vs ddlguard with no policies, interleaved R times,
#     median TPS ratio. Plain reads take the fast path, so the target is a ratio within 3%.
#
# Options (environment): BENCH_TIME (s per pgbench run, default 5), BENCH_REPEAT (3),
# BENCH_STATEMENTS (20000). Run as root on Debian 12; starts its own PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
T=${BENCH_TIME:-5}
R=${BENCH_REPEAT:-3}
N=${BENCH_STATEMENTS:-20000}
bash scripts/build.sh >/dev/null
dg=$top/build/ddlguard
pgbin=/usr/lib/postgresql/15/bin
work=$(mktemp -d /tmp/ddlguard-polbench.XXXXXX)
as_pg=()
[ "$(id -u)" = 0 ] && { chown postgres "$work"; as_pg=(runuser -u postgres --); }
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	"${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT INT TERM
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The policy set: the worked examples of docs/policies.md plus the rules a DBA writes first.
cat > "$work/policies.lua" <<'EOF'
function on_statement(stmt, session)
  local out = {}
  if stmt.tag == "CREATE INDEX" and not stmt.concurrently and stmt.objects[1]
     and not created_in_session(session, stmt.objects[1]) then
    out[#out + 1] = deny{ rule = "require-concurrent-index", message = "CREATE INDEX blocks writes", override = true }
  end
  if stmt.tag == "DROP TABLE" then
    out[#out + 1] = deny{ rule = "no-drop-table", message = "dropping a table breaks the running app", override = true }
  end
  for _, c in ipairs(stmt.subcommands) do
    if c.name == "DROP COLUMN" then out[#out + 1] = warn("dropping column " .. (c.column or "?")) end
    if c.rewrite then out[#out + 1] = warn("rewrites the table") end
    if c.name == "SET NOT NULL" then out[#out + 1] = warn("scans the table under ACCESS EXCLUSIVE") end
  end
  if stmt.lock_level >= LOCK.SHARE_UPDATE_EXCLUSIVE then
    out[#out + 1] = set{ lock_timeout = "2s", statement_timeout = "15min" }
  end
  if stmt.tree and stmt.tree.node_type == "AlterTableStmt" and stmt.tree.relation.relname == "audit" then
    out[#out + 1] = warn("audit table")
  end
  return out
end
EOF
echo 'function on_statement(stmt, session) return allow() end' > "$work/allow.lua"

/usr/bin/python3 - "$N" > "$work/ddl.sql" <<'EOF'
import sys
n = int(sys.argv[1])
shapes = [
  "CREATE TABLE t{i} (id bigint PRIMARY KEY, email text NOT NULL, created_at timestamptz DEFAULT now());",
  "CREATE INDEX t{i}_email ON t{i} (email);",
  "ALTER TABLE accounts ADD COLUMN c{i} integer;",
  "ALTER TABLE accounts ALTER COLUMN c{i} SET NOT NULL;",
  "ALTER TABLE orders ADD CONSTRAINT fk{i} FOREIGN KEY (account_id) REFERENCES accounts (id) NOT VALID;",
  "CREATE INDEX CONCURRENTLY orders_i{i} ON orders (created_at);",
  "ALTER TABLE accounts DROP COLUMN IF EXISTS old{i};",
  "COMMENT ON TABLE accounts IS 'v{i}';",
]
for i in range(n):
    print(shapes[i % len(shapes)].format(i=i))
EOF

cpu_seconds() { # run a command, print its user+sys CPU seconds
	/usr/bin/time -f '%U %S' -o "$work/time.out" "$@" >/dev/null 2>&1 || true
	tail -1 "$work/time.out" | awk '{print $1 + $2}'
}
best() { sort -g | head -1; }
pol=(); allow=()
for _ in $(seq "$R"); do
	pol+=("$(cpu_seconds "$dg" check --rules default -p "$work/policies.lua" "$work/ddl.sql" || true)")
	allow+=("$(cpu_seconds "$dg" check -p "$work/allow.lua" "$work/ddl.sql" || true)")
done
pol_s=$(printf '%s\n' "${pol[@]}" | best)
allow_s=$(printf '%s\n' "${allow[@]}" | best)
per_stmt=$(awk -v a="$pol_s" -v n="$N" 'BEGIN{printf "%.1f", a*1e6/n}')
policy_only=$(awk -v a="$pol_s" -v b="$allow_s" -v n="$N" 'BEGIN{printf "%.1f", (a-b)*1e6/n}')

# PostgreSQL for the pgbench part.
pgport=$(free_port)
"${as_pg[@]}" "$pgbin/initdb" -D "$work/data" -U postgres -A trust >/dev/null
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/data" -l "$work/pg.log" -w \
	-o "-p $pgport -c listen_addresses=127.0.0.1 -c unix_socket_directories=$work -c fsync=off -c max_connections=50" start >/dev/null
"$pgbin/pgbench" -h 127.0.0.1 -p "$pgport" -U postgres -i -s 5 -q postgres >/dev/null 2>&1
start_dg() { # $1 port, $2 extra setting line
	cat > "$work/dg$1.ini" <<EOF
[ddlguard]
listen_addr = 127.0.0.1
listen_port = $1
server_tls_sslmode = disable
log_level = warning
$2
[databases]
* = host=127.0.0.1 port=$pgport
EOF
	"$dg" -c "$work/dg$1.ini" >"$work/dg$1.log" 2>&1 &
	pids+=($!)
}
p_none=$(free_port); p_pol=$(free_port)
start_dg "$p_none" ""
start_dg "$p_pol" "policy_files = $work/policies.lua
rules = default"
sleep 0.5
tps() { "$pgbin/pgbench" -h 127.0.0.1 -p "$1" -U postgres -S -M "$2" -c "$3" -j "$3" -T "$T" postgres 2>/dev/null | sed -n 's/^tps = \([0-9.]*\) .*/\1/p'; }
median() { sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
rows=()
for mode in simple prepared; do
	for c in 1 8; do
		none=(); with=()
		for _ in $(seq "$R"); do
			none+=("$(tps "$p_none" "$mode" "$c")")
			with+=("$(tps "$p_pol" "$mode" "$c")")
		done
		mn=$(printf '%s\n' "${none[@]}" | median)
		mw=$(printf '%s\n' "${with[@]}" | median)
		ratio=$(awk -v a="$mw" -v b="$mn" 'BEGIN{ if (b>0) printf "%.3f", a/b; else print "error" }')
		rows+=("| pgbench -S -M $mode, $c client(s): TPS with policies / without ↑ | $mn | $mw | ${ratio}× | ≥0.97× |")
	done
done

out=$top/bench/results/policy_cost.md
{
	echo "# ddlguard policy cost"
	echo
	echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); machine: $(uname -m), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)); load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- $N generated DDL statements (8 shapes); best of $R runs of \`ddlguard check\` (one process, CPU time)."
	echo "- pgbench: scale 5, ${T}s per run, median of $R interleaved runs; ddlguard with the same policy set vs none."
	echo
	echo "| Measurement | no policies | with policies | ratio | target |"
	echo "|---|---:|---:|---:|---|"
	echo "| CPU per DDL statement, parse + analysis + policies (\`ddlguard check\`), µs ↓ | — | $per_stmt | — | — |"
	echo "| CPU per DDL statement, the policies alone (vs an allow-all policy), µs ↓ | — | $policy_only | — | ≤50 µs |"
	printf '%s\n' "${rows[@]}"
} | tee "$out"

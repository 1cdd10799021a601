#!/usr/bin/env bash
# ddlguard benchmark: direct PostgreSQL vs ddlguard vs PgBouncer (session mode), measured in the
# same run, interleaved, median of BENCH_REPEAT runs. Run as root:   bash bench/run.sh
#
# Options (environment):
#   BENCH_QUICK=1          ~2-minute smoke run (2 s runs, 1 repeat, 100 MiB COPY, 200 idle clients)
#   BENCH_TIME=S           seconds per pgbench run            (default 10; quick 2)
#   BENCH_REPEAT=R         repetitions per row, median taken  (default 3;  quick 1)
#   BENCH_COPY_MB=M        COPY volume in MiB                 (default 1024; quick 100)
#   BENCH_IDLE_CLIENTS=N   idle clients for the memory row    (default 2000; quick 200)
#   BENCH_SCALE=S          pgbench scale factor               (default 10)
#   BENCH_DDLGUARD=PATH    use this ddlguard binary and skip scripts/build.sh
#   BENCH_NO_BUILD=1       do not run scripts/build.sh; use build/ddlguard as it is
#   BENCH_PIN=0            do not pin the 1-client rows to one CPU (default: pin, see README)
#   BENCH_KEEP=1           keep the temporary directory (data dir, configs) after the run
# Output: Markdown report on stdout and in bench/results/latest.md; logs in bench/results/logs/.
# See bench/README.md for what each row measures.
set -uo pipefail
{ # The whole script is one compound command: bash parses it completely before running it, so
  # editing this file while a (20-minute) run is in progress cannot derail that run.

SELF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$SELF_DIR/.." && pwd)
RESULTS=$SELF_DIR/results
LOGS=$RESULTS/logs
PGBIN=/usr/lib/postgresql/15/bin
PGBOUNCER=/usr/sbin/pgbouncer
RUN_START=$(date +%s)

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (PostgreSQL and the proxies are run as the postgres user via setpriv)"

# ---------------------------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------------------------
QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then d_time=2 d_rep=1 d_copy=100 d_idle=200
else d_time=10 d_rep=3 d_copy=1024 d_idle=2000; fi
T=${BENCH_TIME:-$d_time}
R=${BENCH_REPEAT:-$d_rep}
COPY_MB=${BENCH_COPY_MB:-$d_copy}
IDLE_N=${BENCH_IDLE_CLIENTS:-$d_idle}
SCALE=${BENCH_SCALE:-10}
PIN=${BENCH_PIN:-1}
ALL_CPUS=$(awk '/^Cpus_allowed_list:/ { print $2 }' /proc/self/status)
PIN_CPU=${ALL_CPUS##*[,-]}   # the highest CPU we may use
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for v in T R COPY_MB IDLE_N SCALE; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done

# ---------------------------------------------------------------------------------------------
# State and cleanup. Every process we start is recorded here and stopped by the EXIT trap,
# which also runs after Ctrl-C (INT) and TERM. Long-running commands run in the background and
# are waited for, so that a signal interrupts `wait` and the trap runs immediately.
# ---------------------------------------------------------------------------------------------
W=""            # temporary directory
CHILD=""        # current pgbench/psql (wrapped in timeout)
IDLE_PID=""     # idle_clients program
PG_STARTED=0
CLEANED=0
declare -A IPID IPORT IKIND ICONF ITLS IFAIL ISTART_RSS   # proxy instances
INSTANCES=()
NOTES=()
note() { NOTES+=("$*"); log "NOTE: $*"; }

alive() {  # pid -> running and not a zombie
  local st
  [ -n "${1:-}" ] || return 1
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

rss_tree() {  # pid -> VmRSS in KiB of the process and all its descendants
  local p=$1 sum=0 c v
  v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null)
  sum=$((sum + ${v:-0}))
  for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do sum=$((sum + $(rss_tree "$c"))); done
  echo "$sum"
}

kill_pid() {  # pid [grace in 1/10 s] [signal]: signal (TERM), wait, KILL, reap
  local p=${1:-} i
  [ -n "$p" ] || return 0
  if alive "$p"; then
    kill -"${3:-TERM}" "$p" 2>/dev/null
    for ((i = 0; i < ${2:-30}; i++)); do alive "$p" || break; sleep 0.1; done
    alive "$p" && kill -KILL "$p" 2>/dev/null
  fi
  wait "$p" 2>/dev/null
  return 0
}

# Run as the postgres user. setpriv execs the command, so "${AS_PG[@]}" cmd & gives cmd's own pid.
AS_PG=(setpriv --reuid=postgres --regid=postgres --init-groups --)
as_pg() { "${AS_PG[@]}" "$@"; }

stragglers() {  # pids of leftover processes started from our temporary directory (unique path)
  local f p
  [ -n "$W" ] || return 0
  for f in /proc/[0-9]*/cmdline; do
    p=${f#/proc/}; p=${p%/cmdline}
    [ "$p" = $$ ] && continue
    tr '\0' ' ' 2>/dev/null <"$f" | grep -qF "$W/" && echo "$p"
  done
}

cleanup() {
  [ "$CLEANED" = 1 ] && return 0
  CLEANED=1
  trap '' INT TERM
  kill_pid "$CHILD" 20
  kill_pid "$IDLE_PID" 50
  local n pid
  for n in "${INSTANCES[@]}"; do stop_instance "$n"; done
  if [ "$PG_STARTED" = 1 ]; then
    if ! as_pg "$PGBIN/pg_ctl" -D "$W/pg/data" -m immediate -w -t 30 stop >/dev/null 2>&1; then
      pid=$(head -1 "$W/pg/data/postmaster.pid" 2>/dev/null)
      [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    fi
  fi
  for pid in $(stragglers); do kill -KILL "$pid" 2>/dev/null; done
  if [ -n "$W" ] && [ -d "$W" ]; then
    cd / || true
    if [ "${BENCH_KEEP:-0}" = 1 ]; then log "kept temporary directory $W"; else rm -rf "$W"; fi
  fi
}
trap cleanup EXIT
trap 'log "interrupted, cleaning up"; exit 130' INT
trap 'log "terminated, cleaning up"; exit 143' TERM

run_bg() {  # run a command in the background and wait for it (interruptible by the traps)
  "$@" &
  CHILD=$!
  wait "$CHILD"
  local rc=$?
  CHILD=""
  return $rc
}

USED_PORTS=" "
FREE_PORT=""
free_port() {  # sets FREE_PORT to an unused loopback TCP port (below the ephemeral range)
  local p i
  for ((i = 0; i < 500; i++)); do
    p=$((20000 + RANDOM % 10000))
    [[ $USED_PORTS == *" $p "* ]] && continue
    if [ -z "$(ss -Htln "sport = :$p" 2>/dev/null)" ]; then
      USED_PORTS+="$p "
      FREE_PORT=$p
      return 0
    fi
  done
  die "no free port found"
}

# libpq environment: nothing from the caller's environment leaks in.
unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGPASSWORD PGPASSFILE PGSERVICE PGSERVICEFILE \
      PGSSLMODE PGREQUIRESSL PGSSLCERT PGSSLKEY PGSSLROOTCERT PGOPTIONS PGAPPNAME PGTARGETSESSIONATTRS
# sslmode=require must not turn into verify-ca because some ~/.postgresql/root.crt exists.
export PGGSSENCMODE=disable PGCONNECT_TIMEOUT=15 PGPASSFILE=/nonexistent/ddlguard-bench/pgpass \
       PGSSLROOTCERT=/nonexistent/ddlguard-bench/root.crt

# ---------------------------------------------------------------------------------------------
# Setup
# ---------------------------------------------------------------------------------------------
log "options: time=${T}s repeat=$R copy=${COPY_MB}MiB idle_clients=$IDLE_N scale=$SCALE quick=$QUICK"
bash "$TOP/scripts/install-deps.sh" || die "scripts/install-deps.sh failed"
for b in "$PGBIN/initdb" "$PGBIN/pg_ctl" "$PGBOUNCER" pgbench psql openssl cc pkg-config ss setpriv timeout; do
  command -v "$b" >/dev/null || die "missing $b"
done

mkdir -p "$RESULTS"
rm -rf "$LOGS"
mkdir -p "$LOGS"

# File descriptors: the proxies hold 2 sockets per client at the idle-memory row.
need_fd=$((2 * IDLE_N + 1024))
[ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$need_fd" ] && ulimit -Hn "$need_fd" 2>/dev/null
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge "$need_fd" ] ||
  die "ulimit -n is $(ulimit -n), need $need_fd for $IDLE_N idle clients (lower BENCH_IDLE_CLIENTS)"

# ddlguard binary
DG_OK=1
DG_WHY=""
if [ -n "${BENCH_DDLGUARD:-}" ]; then
  DG_BIN=$BENCH_DDLGUARD
else
  DG_BIN=$TOP/build/ddlguard
  if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    log "building ddlguard (scripts/build.sh, log: bench/results/logs/build.log)"
    # One retry: a build running at the same time in the same tree (ar, -j) can break ours.
    if ! bash "$TOP/scripts/build.sh" >"$LOGS/build.log" 2>&1 &&
       ! { sleep 10; log "build failed, retrying once"; bash "$TOP/scripts/build.sh" >>"$LOGS/build.log" 2>&1; }; then
      DG_OK=0
      DG_WHY="scripts/build.sh failed (bench/results/logs/build.log: $(grep -m1 -E 'error|Error' "$LOGS/build.log" | cut -c1-200)); BENCH_NO_BUILD=1 benchmarks the existing build/ddlguard"
    fi
  fi
fi
if [ "$DG_OK" = 1 ] && [ ! -x "$DG_BIN" ]; then DG_OK=0; DG_WHY="$DG_BIN does not exist"; fi
[ "$DG_OK" = 1 ] || note "ddlguard not available: $DG_WHY — its cells read 'error'"

W=$(mktemp -d /tmp/ddlguard-bench.XXXXXX) || die "mktemp failed"
chmod 755 "$W"
cd "$W" || die "cd $W"
if [ "$DG_OK" = 1 ]; then   # private copy: a rebuild during the run must not change what we measure
  DG_SRC=$DG_BIN
  cp "$DG_SRC" "$W/ddlguard" && chmod 755 "$W/ddlguard" || die "cannot copy $DG_SRC"
  DG_BIN=$W/ddlguard
  DG_BUILT=$(date -r "$DG_SRC" "+%F %T")
fi
mkdir -p "$W/pg" "$W/tls" "$W/conf"
chown postgres:postgres "$W/pg" "$W/tls" "$W/conf"

log "compiling idle_clients"
cc -O2 -Wall -o "$W/idle_clients" "$SELF_DIR/idle_clients.c" $(pkg-config --cflags --libs libpq) \
  >"$LOGS/idle_clients-build.log" 2>&1 || die "cannot compile bench/idle_clients.c (see $LOGS/idle_clients-build.log)"

log "generating a self-signed certificate"
openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj "/CN=127.0.0.1" \
  -keyout "$W/tls/server.key" -out "$W/tls/server.crt" >"$LOGS/openssl.log" 2>&1 || die "openssl req failed"
chown postgres:postgres "$W/tls/server.key" "$W/tls/server.crt"
chmod 600 "$W/tls/server.key"

free_port; PGPORT_=$FREE_PORT
MAXCONN=$((IDLE_N + 200))
log "initdb + start PostgreSQL 15 on 127.0.0.1:$PGPORT_ (max_connections=$MAXCONN)"
as_pg "$PGBIN/initdb" -D "$W/pg/data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
  >"$LOGS/initdb.log" 2>&1 || die "initdb failed (see $LOGS/initdb.log)"
cat >>"$W/pg/data/postgresql.conf" <<EOF

# --- ddlguard bench ---
listen_addresses = '127.0.0.1'
port = $PGPORT_
unix_socket_directories = '$W/pg'
max_connections = $MAXCONN
shared_buffers = 256MB
ssl = on
ssl_cert_file = '$W/tls/server.crt'
ssl_key_file = '$W/tls/server.key'
# Throwaway server: durability off so the numbers show proxy cost, not disk flushes.
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
max_wal_size = 4GB
checkpoint_timeout = 30min
log_min_messages = warning
log_connections = off
log_disconnections = off
EOF
cat >"$W/pg/data/pg_hba.conf" <<EOF
local all all trust
host  all all 127.0.0.1/32 trust
EOF
touch "$LOGS/postgres.log" && chown postgres:postgres "$LOGS/postgres.log"
PG_STARTED=1
as_pg "$PGBIN/pg_ctl" -D "$W/pg/data" -l "$LOGS/postgres.log" -w -t 120 start >/dev/null 2>&1 ||
  die "PostgreSQL did not start (see $LOGS/postgres.log)"

pq() {  # psql straight to PostgreSQL, plain TCP
  PGSSLMODE=disable psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT_" -U postgres -d "${PQ_DB:-bench}" "$@"
}
PQ_DB=postgres pq -c "CREATE DATABASE bench" || die "CREATE DATABASE failed"
log "pgbench -i -s $SCALE"
pgbench -i -q -s "$SCALE" -h 127.0.0.1 -p "$PGPORT_" -U postgres bench >"$LOGS/pgbench-init.log" 2>&1 ||
  die "pgbench -i failed (see $LOGS/pgbench-init.log)"
pq -c "CREATE UNLOGGED TABLE copybench (id bigint, k int, pad text)" || die "CREATE TABLE copybench failed"
pq -c "CREATE EXTENSION IF NOT EXISTS pg_prewarm" >/dev/null 2>&1 &&
  pq -c "SELECT pg_prewarm('pgbench_accounts'), pg_prewarm('pgbench_accounts_pkey')" >/dev/null 2>&1

log "generating ${COPY_MB} MiB of COPY data"
awk -v target=$((COPY_MB * 1048576)) 'BEGIN {
  s = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"; s = s s s
  n = 0; i = 0
  while (n < target) { i++; line = i "\t" (i * 7919) % 100000 "\t" substr(s, i % 62 + 1, 80); print line; n += length(line) + 1 }
}' >"$W/copy.tsv" || die "cannot write $W/copy.tsv"
COPY_BYTES=$(stat -c %s "$W/copy.tsv")
COPY_ROWS=$(wc -l <"$W/copy.tsv")
chmod 644 "$W/copy.tsv"
COPY_TIMEOUT=$((COPY_MB / 2 + 120))   # generous: fails only below ~2 MiB/s

# ---------------------------------------------------------------------------------------------
# Proxy instances. Plain (no TLS on either leg) instances serve most rows; *_tls instances have
# TLS on both legs; pgb_nr is PgBouncer with server_lifetime=0 (no server connection reuse).
# Both proxies run as the postgres user and log warnings only.
# ---------------------------------------------------------------------------------------------
write_pgbouncer_conf() {  # name port tls lifetime
  local n=$1 port=$2 tls=$3 lifetime=$4 mode=disable
  [ "$tls" = 1 ] && mode=require
  cat >"$W/conf/$n.ini" <<EOF
[databases]
* = host=127.0.0.1 port=$PGPORT_

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $W/conf/userlist.txt
pool_mode = session
max_client_conn = $((IDLE_N + 500))
default_pool_size = $((IDLE_N + 500))
max_db_connections = 0
server_lifetime = $lifetime
ignore_startup_parameters = extra_float_digits
log_connections = 0
log_disconnections = 0
log_stats = 0
client_tls_sslmode = $mode
client_tls_cert_file = $W/tls/server.crt
client_tls_key_file = $W/tls/server.key
server_tls_sslmode = $mode
EOF
}

write_ddlguard_conf() {  # name port tls
  local n=$1 port=$2 tls=$3
  if [ "$tls" = 1 ]; then
    cat >"$W/conf/$n.ini" <<EOF
[ddlguard]
listen_addr = 127.0.0.1
listen_port = $port
client_tls_sslmode = require
client_tls_cert_file = $W/tls/server.crt
client_tls_key_file = $W/tls/server.key
server_tls_sslmode = require
max_client_conn = $((IDLE_N + 500))
log_level = warning

[databases]
* = host=127.0.0.1 port=$PGPORT_
EOF
  else
    cat >"$W/conf/$n.ini" <<EOF
[ddlguard]
listen_addr = 127.0.0.1
listen_port = $port
client_tls_sslmode = disable
server_tls_sslmode = disable
max_client_conn = $((IDLE_N + 500))
log_level = warning

[databases]
* = host=127.0.0.1 port=$PGPORT_
EOF
  fi
}

add_instance() {  # name kind tls [server_lifetime]
  local n=$1
  free_port
  IPORT[$n]=$FREE_PORT
  IKIND[$n]=$2
  ITLS[$n]=$3
  ICONF[$n]=$W/conf/$n.ini
  IPID[$n]=""
  INSTANCES+=("$n")
  if [ "$2" = pgbouncer ]; then write_pgbouncer_conf "$n" "${IPORT[$n]}" "$3" "${4:-3600}"
  else write_ddlguard_conf "$n" "${IPORT[$n]}" "$3"; fi
  chown postgres:postgres "${ICONF[$n]}"
}

probe() {  # port sslmode -> SELECT 1 works
  PGSSLMODE=$2 PGCONNECT_TIMEOUT=3 timeout 10 psql -X -q -At -h 127.0.0.1 -p "$1" -U postgres -d bench \
    -c "SELECT 1" >/dev/null 2>&1
}

start_instance() {  # name -> 0 when accepting queries
  local n=$1 logf=$LOGS/$1.log i ssl=disable
  if [ "${IFAIL[$n]:-0}" -ge 3 ]; then return 1; fi   # gave up on it: do not spend 15 s per cell
  [ "${ITLS[$n]}" = 1 ] && ssl=require
  echo "=== $(date '+%F %T') start" >>"$logf"
  if [ "${IKIND[$n]}" = pgbouncer ]; then
    "${AS_PG[@]}" "$PGBOUNCER" "${ICONF[$n]}" >>"$logf" 2>&1 </dev/null &
  else
    "${AS_PG[@]}" "$DG_BIN" -c "${ICONF[$n]}" >>"$logf" 2>&1 </dev/null &
  fi
  IPID[$n]=$!
  for ((i = 0; i < 150; i++)); do
    alive "${IPID[$n]}" || break
    probe "${IPORT[$n]}" "$ssl" && { IFAIL[$n]=0; ISTART_RSS[$n]="$(rss_tree "${IPID[$n]}") KiB at $(date +%T)"; return 0; }
    sleep 0.1
  done
  IFAIL[$n]=$(( ${IFAIL[$n]:-0} + 1 ))
  local why="not accepting queries after 15 s"
  if ! alive "${IPID[$n]}"; then wait "${IPID[$n]}" 2>/dev/null; why="exited with status $? at startup"; fi
  stop_instance "$n"
  [ "${IFAIL[$n]}" -ge 3 ] && why+=" (3rd failed start in a row: no more attempts)"
  note "$n ($(basename "${ICONF[$n]}")) failed to start: $why; log tail: $(tail -n 3 "$logf" | tr '\n' ' ' | cut -c1-300)"
  return 1
}

stop_signal() {  # immediate shutdown: PgBouncer on SIGTERM, ddlguard on SIGINT (SIGTERM drains)
  [ "${IKIND[$1]}" = pgbouncer ] && echo TERM || echo INT
}
stop_instance() { kill_pid "${IPID[$1]:-}" 50 "$(stop_signal "$1")"; IPID[$1]=""; }

CUR=""   # current measurement, for notes
ensure_up() {  # name: restart if it died since the last check
  local n=$1 st
  [ -n "${IPID[$n]}" ] && alive "${IPID[$n]}" && return 0
  if [ -n "${IPID[$n]}" ]; then
    wait "${IPID[$n]}" 2>/dev/null; st=$?
    note "$n exited (status $st$( [ $st -gt 128 ] && echo ", signal $(kill -l $((st - 128)) 2>/dev/null)")) before $CUR; restarting. Log: bench/results/logs/$n.log"
    IPID[$n]=""
  fi
  start_instance "$n"
}

check_after() {  # name: after a measurement; 1 if the instance died during it
  local n=$1 st
  [ -z "$n" ] && return 0
  alive "${IPID[$n]}" && return 0
  wait "${IPID[$n]}" 2>/dev/null; st=$?
  note "$n died during $CUR (status $st$( [ $st -gt 128 ] && echo ", signal $(kill -l $((st - 128)) 2>/dev/null)")). Log: bench/results/logs/$n.log"
  IPID[$n]=""
  return 1
}

echo '"postgres" ""' >"$W/conf/userlist.txt"
chown postgres:postgres "$W/conf/userlist.txt"
add_instance pgb_plain pgbouncer 0
add_instance pgb_tls pgbouncer 1
add_instance pgb_nr pgbouncer 0 0
if [ "$DG_OK" = 1 ]; then
  add_instance dg_plain ddlguard 0
  add_instance dg_tls ddlguard 1
fi
for n in "${INSTANCES[@]}"; do
  log "starting $n on 127.0.0.1:${IPORT[$n]}"
  start_instance "$n"
done

# What each TLS endpoint negotiates, and whether each proxy's server leg is encrypted.
TLSINFO=()
tls_info() {  # label port
  local s
  s=$(timeout 10 openssl s_client -starttls postgres -connect "127.0.0.1:$2" </dev/null 2>/dev/null |
      awk '/^New, /{sub(/^New, /,""); print; exit}')
  TLSINFO+=("$1 client leg: ${s:-no TLS handshake}")
}
server_leg() {  # label port sslmode
  local s
  s=$(PGSSLMODE=$3 timeout 10 psql -X -At -h 127.0.0.1 -p "$2" -U postgres -d bench \
      -c "SELECT CASE WHEN ssl THEN version || ' ' || cipher ELSE 'no TLS' END FROM pg_stat_ssl WHERE pid = pg_backend_pid()" 2>/dev/null)
  TLSINFO+=("$1 server leg (seen by PostgreSQL): ${s:-unknown}")
}
tls_info "direct" "$PGPORT_"
server_leg "direct sslmode=require" "$PGPORT_" require
server_leg "direct sslmode=disable" "$PGPORT_" disable
for n in "${INSTANCES[@]}"; do
  [ -n "${IPID[$n]}" ] || continue
  if [ "${ITLS[$n]}" = 1 ]; then tls_info "$n" "${IPORT[$n]}"; server_leg "$n" "${IPORT[$n]}" require
  else server_leg "$n" "${IPORT[$n]}" disable; fi
done

# warm-up (not recorded)
pgbench -n -S -T 2 -c 2 -j 2 -h 127.0.0.1 -p "$PGPORT_" -U postgres bench >/dev/null 2>&1

# ---------------------------------------------------------------------------------------------
# Measurements. A target name maps to an endpoint: direct (PostgreSQL), ddlguard, pgbouncer,
# pgbouncer_nr. Each measure_* function sets RES=(metric value ...) or ERRMSG and returns 1.
# ---------------------------------------------------------------------------------------------
EP_PORT="" EP_SSL="" EP_INST="" EP_WHY=""
endpoint() {  # tls(0/1) target
  local tls=$1 tgt=$2 inst=""
  EP_WHY=""
  EP_SSL=disable
  [ "$tls" = 1 ] && EP_SSL=require
  case $tgt in
    direct) EP_PORT=$PGPORT_ EP_INST=""; return 0 ;;
    ddlguard) [ "$DG_OK" = 1 ] || { EP_WHY="ddlguard not available"; return 1; }
              inst=dg_plain; [ "$tls" = 1 ] && inst=dg_tls ;;
    pgbouncer) inst=pgb_plain; [ "$tls" = 1 ] && inst=pgb_tls ;;
    pgbouncer_nr) inst=pgb_nr ;;
  esac
  EP_INST=$inst
  EP_PORT=${IPORT[$inst]}
}

RES=()
ERRMSG=""
PGB_ARGS=()
PIN_PREFIX=()   # (taskset -c CPU) while a 1-client row runs pinned
set_affinity() {  # cpu-list: PostgreSQL (postmaster, every backend) and every running proxy
  local pm p n
  pm=$(head -1 "$W/pg/data/postmaster.pid" 2>/dev/null)
  for p in $pm $(cat /proc/"$pm"/task/*/children 2>/dev/null); do taskset -a -p -c "$1" "$p" >/dev/null 2>&1; done
  for n in "${INSTANCES[@]}"; do
    [ -n "${IPID[$n]}" ] && taskset -a -p -c "$1" "${IPID[$n]}" >/dev/null 2>&1
  done
}
measure_pgbench() {
  local out=$W/pgbench.out rc tps lat
  run_bg timeout -k 5 $((T * 2 + 60)) "${PIN_PREFIX[@]}" env PGSSLMODE="$EP_SSL" \
    pgbench -n -T "$T" -h 127.0.0.1 -p "$EP_PORT" -U postgres "${PGB_ARGS[@]}" bench >"$out" 2>&1
  rc=$?
  cat "$out" >>"$LOGS/pgbench.log"
  tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$out" | head -1)
  lat=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' "$out" | head -1)
  if [ $rc -ne 0 ] || [ -z "$tps" ] || [ -z "$lat" ]; then
    ERRMSG="pgbench exit $rc: $(grep -v '^progress' "$out" | tail -n 3 | tr '\n' ' ' | cut -c1-300)"
    return 1
  fi
  RES=(tps "$tps" lat "$lat")
}

measure_conn() {
  measure_pgbench || return 1
  RES=(cps "${RES[1]}")
}

copy_psql() {  # sql-backslash-command -> sets COPY_SECS, checks "COPY n"
  local out=$W/copy.out rc t0 t1 n
  t0=$(date +%s.%N)
  run_bg timeout -k 5 "$COPY_TIMEOUT" env PGSSLMODE="$EP_SSL" \
    psql -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$EP_PORT" -U postgres -d bench -c "$1" >"$out" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  n=$(sed -n 's/^COPY \([0-9]*\)$/\1/p' "$out" | tail -1)
  if [ $rc -ne 0 ] || [ "$n" != "$COPY_ROWS" ]; then
    ERRMSG="psql exit $rc, rows '${n}' (expected $COPY_ROWS): $(tail -n 3 "$out" | tr '\n' ' ' | cut -c1-300)"
    return 1
  fi
  COPY_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }')
}

measure_copy_in() {
  pq -c "TRUNCATE copybench" -c "CHECKPOINT" || { ERRMSG="TRUNCATE copybench failed"; return 1; }
  copy_psql "\\copy copybench from '$W/copy.tsv'" || return 1
  RES=(mibs "$(awk -v b="$COPY_BYTES" -v s="$COPY_SECS" 'BEGIN { printf "%.3f", b / 1048576 / s }')")
}

measure_copy_out() {
  copy_psql "\\copy copybench to '/dev/null'" || return 1
  RES=(mibs "$(awk -v b="$COPY_BYTES" -v s="$COPY_SECS" 'BEGIN { printf "%.3f", b / 1048576 / s }')")
}

client_backends() { pq -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'" 2>/dev/null; }
wait_backends() {  # wait until at most $1 client backends remain (up to $2 s)
  local i c
  for ((i = 0; i < $2 * 5; i++)); do
    c=$(client_backends)
    [ -n "$c" ] && [ "$c" -le "$1" ] && return 0
    sleep 0.2
  done
  return 1
}


measure_idle() {
  local inst=$EP_INST i before after deadline
  # Fresh proxy process: the delta is not hidden by memory freed (and kept) after earlier rows.
  stop_instance "$inst"
  wait_backends 40 60
  start_instance "$inst" || { ERRMSG="$inst did not restart"; return 1; }
  probe "$EP_PORT" "$EP_SSL"
  sleep 0.5
  before=$(rss_tree "${IPID[$inst]}")
  : >"$W/idle.out"
  "$W/idle_clients" "$IDLE_N" \
    "host=127.0.0.1 port=$EP_PORT user=postgres dbname=bench sslmode=disable gssencmode=disable connect_timeout=15" \
    >"$W/idle.out" 2>"$W/idle.err" </dev/null &
  IDLE_PID=$!
  deadline=$((SECONDS + IDLE_N / 10 + 120))
  while ! grep -q '^READY' "$W/idle.out"; do
    if ! alive "$IDLE_PID" || [ $SECONDS -gt $deadline ]; then
      ERRMSG="idle_clients: $(head -c 300 "$W/idle.err" | tr '\n' ' ')"
      [ $SECONDS -gt $deadline ] && ERRMSG="timeout opening $IDLE_N connections; $ERRMSG"
      kill_pid "$IDLE_PID" 50; IDLE_PID=""
      stop_instance "$inst"; wait_backends 40 120; start_instance "$inst"
      return 1
    fi
    sleep 0.2
  done
  sleep 1
  after=$(rss_tree "${IPID[$inst]}")
  alive "${IPID[$inst]}" || { ERRMSG="$inst died holding $IDLE_N clients"; kill_pid "$IDLE_PID" 50; IDLE_PID=""; return 1; }
  kill_pid "$IDLE_PID" 100
  IDLE_PID=""
  # Restart so that PgBouncer's pooled server connections (and any leftovers) are closed.
  stop_instance "$inst"
  wait_backends 40 120 || note "backends still open after the idle-client test on $inst"
  start_instance "$inst"
  RES=(kib "$(awk -v a="$after" -v b="$before" -v n="$IDLE_N" 'BEGIN { printf "%.3f", (a - b) / n }')"
       rss_before_kib "$before" rss_after_kib "$after")
}

declare -A SAMP ERRC
add_sample() { SAMP["$1|$2|$3"]+="$4 "; }   # row metric target value
fail_sample() {  # row target message
  ERRC["$1|$2"]=$(( ${ERRC["$1|$2"]:-0} + 1 ))
  [ "${3:-}" = "ddlguard not available" ] || note "$CUR failed: $3"
}

ROW_PIN=0   # 1: run the row with pgbench, PostgreSQL and the proxy all on CPU $PIN_CPU
run_row() {  # row-id tls measure-function target...
  local row=$1 tls=$2 fn=$3
  shift 3
  local targets=("$@") n=$# rep k tgt i
  for ((rep = 0; rep < R; rep++)); do
    for ((k = 0; k < n; k++)); do
      tgt=${targets[$(((k + rep) % n))]}          # rotate the order each repetition
      CUR="$row [rep $((rep + 1))/$R, $tgt]"
      if ! endpoint "$tls" "$tgt"; then fail_sample "$row" "$tgt" "$EP_WHY"; continue; fi
      if [ -n "$EP_INST" ] && ! ensure_up "$EP_INST"; then fail_sample "$row" "$tgt" "$EP_INST is not running"; continue; fi
      if [ "$ROW_PIN" = 1 ]; then set_affinity "$PIN_CPU"; PIN_PREFIX=(taskset -c "$PIN_CPU"); fi
      RES=() ERRMSG=""
      if $fn && check_after "$EP_INST"; then
        for ((i = 0; i < ${#RES[@]}; i += 2)); do add_sample "$row" "${RES[i]}" "$tgt" "${RES[i + 1]}"; done
        log "$CUR: ${RES[*]}"
      else
        [ -n "$ERRMSG" ] || ERRMSG="proxy died during the measurement"
        fail_sample "$row" "$tgt" "$ERRMSG"
        log "$CUR: error"
      fi
    done
  done
  if [ "$ROW_PIN" = 1 ]; then set_affinity "$ALL_CPUS"; PIN_PREFIX=(); fi
}

ALL3=(direct ddlguard pgbouncer)
for mode in simple extended prepared; do
  for c in 1 8; do
    PGB_ARGS=(-S -M "$mode" -c "$c" -j "$c")
    ROW_PIN=0; [ "$c" = 1 ] && ROW_PIN=$PIN
    run_row "sel_${mode}_c$c" 0 measure_pgbench "${ALL3[@]}"
  done
done

tpcb_prep() { pq -c "TRUNCATE pgbench_history" -c "VACUUM pgbench_branches" -c "VACUUM pgbench_tellers" >/dev/null 2>&1; }
measure_tpcb() { tpcb_prep; measure_pgbench; }
PGB_ARGS=(-M simple -c 8 -j 8)
run_row tpcb_c8 0 measure_tpcb "${ALL3[@]}"

for c in 1 8; do
  PGB_ARGS=(-S -M extended -c "$c" -j "$c")
  ROW_PIN=0; [ "$c" = 1 ] && ROW_PIN=$PIN
  run_row "tls_ext_c$c" 1 measure_pgbench "${ALL3[@]}"
done
ROW_PIN=0

PGB_ARGS=(-C -S -M simple -c 4 -j 4)
run_row conn_c4 0 measure_conn direct ddlguard pgbouncer pgbouncer_nr

log "COPY warm-up (not recorded)"
pq -c "\\copy copybench from '$W/copy.tsv'" >/dev/null && pq -c "\\copy copybench to '/dev/null'" >/dev/null
run_row copy_in 0 measure_copy_in "${ALL3[@]}"
if [ "$(pq -c "SELECT count(*) FROM copybench")" != "$COPY_ROWS" ]; then   # every COPY IN failed?
  pq -c "TRUNCATE copybench" && pq -c "\\copy copybench from '$W/copy.tsv'" >/dev/null
fi
run_row copy_out 0 measure_copy_out "${ALL3[@]}"

RSSINFO=()
for n in "${INSTANCES[@]}"; do
  [ -n "${IPID[$n]}" ] && alive "${IPID[$n]}" &&
    RSSINFO+=("$n: after start ${ISTART_RSS[$n]:-?}, $(rss_tree "${IPID[$n]}") KiB at $(date +%T) after all throughput rows")
done
run_row idle_mem 0 measure_idle ddlguard pgbouncer

# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
median() {  # values... -> median
  printf '%s\n' "$@" | grep . | sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) exit 1; if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
med() {  # row metric target -> median, or "error"
  local v=${SAMP["$1|$2|$3"]:-}
  if [ "${ERRC["$1|$3"]:-0}" -gt 0 ] || [ -z "$v" ]; then echo error; return; fi
  # shellcheck disable=SC2086
  median $v
}
isnum() { [[ $1 =~ ^-?[0-9]+(\.[0-9]+)?(e[-+]?[0-9]+)?$ ]]; }
fmt() {  # kind value
  isnum "$2" || { echo "$2"; return; }
  case $1 in
    int) awk -v v="$2" 'BEGIN { printf "%.0f", v }' ;;
    ms) awk -v v="$2" 'BEGIN { printf "%.3f", v }' ;;
    us|mib) awk -v v="$2" 'BEGIN { printf "%.1f", v }' ;;
    kib) awk -v v="$2" 'BEGIN { printf "%.2f", v }' ;;
    *) echo "$2" ;;
  esac
}
ratio() { if isnum "$1" && isnum "$2" && awk -v b="$2" 'BEGIN { exit !(b != 0) }'; then awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f×", a / b }'; else echo "—"; fi; }
added_us() { if isnum "$1" && isnum "$2"; then awk -v p="$1" -v d="$2" 'BEGIN { printf "%.3f", 1e6 / p - 1e6 / d }'; else echo error; fi; }

# Row spec: label | row-id | metric | direction (up: higher is better) | target | format | pgbouncer target
SPEC=()
clients() { if [ "$1" = 1 ]; then [ "$PIN" = 1 ] && echo "1 client, 1 CPU" || echo "1 client"; else echo "$1 clients"; fi; }
for mode in simple extended prepared; do
  for c in 1 8; do
    SPEC+=("Select-only (-S), -M $mode, $(clients $c): TPS ↑|sel_${mode}_c$c|tps|up|x12|int|pgbouncer")
    SPEC+=("Select-only (-S), -M $mode, $(clients $c): latency avg, ms ↓|sel_${mode}_c$c|lat|down|-|ms|pgbouncer")
    [ "$c" = 1 ] && SPEC+=("Select-only (-S), -M $mode, $(clients $c): µs added per round trip ↓|sel_${mode}_c1|added|down|us10|us|pgbouncer")
  done
done
SPEC+=("TPC-B (default script), 8 clients: TPS ↑|tpcb_c8|tps|up|x12|int|pgbouncer")
SPEC+=("TPC-B (default script), 8 clients: latency avg, ms ↓|tpcb_c8|lat|down|-|ms|pgbouncer")
SPEC+=("COPY FROM STDIN (${COPY_MB} MiB, psql \\copy): MiB/s ↑|copy_in|mibs|up|x12|mib|pgbouncer")
SPEC+=("COPY TO STDOUT (${COPY_MB} MiB, psql \\copy): MiB/s ↑|copy_out|mibs|up|x12|mib|pgbouncer")
SPEC+=("New connections (pgbench -C -S, 4 clients): conn/s ↑|conn_c4|cps|up|x12|int|pgbouncer")
SPEC+=("New connections, vs PgBouncer with server_lifetime=0 (no server reuse): conn/s ↑|conn_c4|cps|up|x12|int|pgbouncer_nr")
for c in 1 8; do
  SPEC+=("TLS both legs, -S -M extended, $(clients $c): TPS ↑|tls_ext_c$c|tps|up|x12|int|pgbouncer")
  SPEC+=("TLS both legs, -S -M extended, $(clients $c): latency avg, ms ↓|tls_ext_c$c|lat|down|-|ms|pgbouncer")
  [ "$c" = 1 ] && SPEC+=("TLS both legs, -S -M extended, $(clients $c): µs added per round trip ↓|tls_ext_c1|added|down|us10|us|pgbouncer")
done
SPEC+=("Memory per idle client, $IDLE_N clients (proxy RSS delta): KiB ↓|idle_mem|kib|down|kib16|kib|pgbouncer")

cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
[ -n "$cpu_model" ] || cpu_model=$(lscpu 2>/dev/null | awk -F': *' '/Model name/ { print $2; exit }')
dg_version="not available"
if [ "$DG_OK" = 1 ]; then
  dg_version="$(timeout 5 "$DG_BIN" --version 2>/dev/null | head -1)"
  dg_version="${dg_version:+$dg_version, }$DG_SRC sha256 $(sha256sum "$DG_BIN" | cut -c1-12), built $DG_BUILT"
  gitrev=$(git -C "$TOP" rev-parse --short HEAD 2>/dev/null) && dg_version+=", git $gitrev$( [ -n "$(git -C "$TOP" status --porcelain 2>/dev/null | head -1)" ] && echo "+dirty")"
fi
RUN_SECS=$(( $(date +%s) - RUN_START ))

report() {
  local line label row metric dir tgt f pgbt d g b rgb rgd target
  echo "# ddlguard benchmark"
  echo
  echo "- Date: $(date '+%F %T %Z')"
  echo "- Machine: $(uname -m), $(nproc) CPUs ($cpu_model), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r)"
  echo "- Versions: ddlguard: $dg_version; $("$PGBIN/postgres" --version); $(pgbench --version); PgBouncer $("$PGBOUNCER" --version | awk 'NR == 1 { print $2 }'); libpq $(pkg-config --modversion libpq); $(openssl version | cut -d' ' -f1-2); libevent $(pkg-config --modversion libevent)"
  echo "- Settings: pgbench -T ${T}s, median of $R interleaved repetition(s) (order rotated each repetition), scale $SCALE, COPY ${COPY_MB} MiB ($COPY_ROWS rows), $IDLE_N idle clients$( [ "$QUICK" = 1 ] && echo ", QUICK smoke run")"
  if [ "$PIN" = 1 ]; then
    echo "- CPU pinning: the 1-client rows run pgbench, PostgreSQL (every backend) and the proxy all on CPU $PIN_CPU (taskset), which takes cross-CPU wake-up latency out of the per-round-trip numbers; every other row runs unpinned on CPUs $ALL_CPUS."
  else
    echo "- CPU pinning: none (BENCH_PIN=0); every row runs unpinned on CPUs $ALL_CPUS."
  fi
  local load_end busy
  load_end=$(cut -d' ' -f1-3 /proc/loadavg)
  echo "- Load average (1/5/15 min) at start: $LOAD_START; at end: $load_end. Anything else running on this machine adds noise to all three columns alike."
  # Our own load is about 1-2 runnable processes; more than that on top means someone else is busy.
  busy=$(awk -v a="${LOAD_START%% *}" -v b="${load_end%% *}" -v n="$(nproc)" 'BEGIN { print (a > n / 2 || b > 2 * n + 1) ? 1 : 0 }')
  [ "$busy" = 1 ] && echo "- **Warning: the machine was busy with other work during this run** (see load average); compare the spread in \"Raw samples\" before trusting a difference."
  echo "- Everything on 127.0.0.1 TCP. PostgreSQL: fsync/full_page_writes/synchronous_commit off, shared_buffers 256MB, COPY table UNLOGGED. PgBouncer: pool_mode=session, auth_type=trust. Both proxies run as user postgres, warnings-only logging."
  echo "- Run time: $((RUN_SECS / 60)) min $((RUN_SECS % 60)) s"
  echo
  echo "Ratios are ddlguard's value divided by the other column's. ↑ rows (throughput): higher is better, a ratio > 1 means ddlguard is faster. ↓ rows (latency, µs added, KiB): lower is better, a ratio < 1 means ddlguard is better. Targets (not enforced): ddlguard ≥ 1.2× PgBouncer throughput, ≤ 10 µs added per round trip at 1 client, ≤ 16 KiB per idle client."
  echo
  echo "| Measurement | direct | ddlguard | pgbouncer | ddlguard/pgbouncer | ddlguard/direct | ddlguard target |"
  echo "|---|---:|---:|---:|---:|---:|---|"
  for line in "${SPEC[@]}"; do
    IFS='|' read -r label row metric dir target f pgbt <<<"$line"
    if [ "$metric" = added ]; then
      d="0 (baseline)"
      g=$(added_us "$(med "$row" tps ddlguard)" "$(med "$row" tps direct)")
      b=$(added_us "$(med "$row" tps "$pgbt")" "$(med "$row" tps direct)")
      rgb=$(ratio "$g" "$b"); rgd="—"
      # a ratio of added times means nothing unless both are positive (noise can make one < 0)
      if ! isnum "$g" || ! isnum "$b" || awk -v g="$g" -v b="$b" 'BEGIN { exit !(g <= 0 || b <= 0) }'; then rgb="—"; fi
    elif [ "$row" = idle_mem ]; then
      d="n/a"
      g=$(med "$row" "$metric" ddlguard); b=$(med "$row" "$metric" "$pgbt")
      rgb=$(ratio "$g" "$b"); rgd="—"
    else
      d=$(med "$row" "$metric" direct); g=$(med "$row" "$metric" ddlguard); b=$(med "$row" "$metric" "$pgbt")
      rgb=$(ratio "$g" "$b"); rgd=$(ratio "$g" "$d")
    fi
    case $target in
      x12) if isnum "$g" && isnum "$b"; then
             awk -v g="$g" -v b="$b" 'BEGIN { exit !(g >= 1.2 * b) }' && target="≥1.2× PgB: met" || target="≥1.2× PgB: **missed**"
           else target="≥1.2× PgB: error"; fi ;;
      us10) if isnum "$g"; then awk -v g="$g" 'BEGIN { exit !(g <= 10) }' && target="≤10 µs: met" || target="≤10 µs: **missed**"
            else target="≤10 µs: error"; fi ;;
      kib16) if isnum "$g"; then awk -v g="$g" 'BEGIN { exit !(g <= 16) }' && target="≤16 KiB: met" || target="≤16 KiB: **missed**"
             else target="≤16 KiB: error"; fi ;;
      *) target="—" ;;
    esac
    echo "| $label | $(fmt "$f" "$d") | $(fmt "$f" "$g") | $(fmt "$f" "$b") | $rgb | $rgd | $target |"
  done
  echo
  echo "µs added per round trip = 1e6/TPS(proxy) − 1e6/TPS(direct), from the median TPS (one -S transaction is one round trip)."
  echo "In the connection rows every ddlguard client gets a new PostgreSQL backend; PgBouncer (default server_lifetime) hands a pooled, already-forked server connection to each new client, the server_lifetime=0 row does not."
  echo
  echo "## TLS"
  echo
  local x
  for x in "${TLSINFO[@]}"; do echo "- $x"; done
  echo
  echo "## Proxy memory over the run"
  echo
  echo "Resident memory of each proxy process after its (re)start and after all throughput rows (a large growth hints at a leak)."
  echo
  for x in "${RSSINFO[@]}"; do echo "- $x"; done
  echo
  echo "## Notes"
  echo
  if [ ${#NOTES[@]} -eq 0 ]; then echo "- none (no failures, no proxy restarts)"; else for x in "${NOTES[@]}"; do echo "- $x"; done; fi
  echo
  echo "## Raw samples"
  echo
  echo "Per row and target, in run order (tps/cps per second, lat ms, mibs MiB/s, kib KiB per client, rss KiB)."
  echo
  echo '```'
  local key
  for key in $(printf '%s\n' "${!SAMP[@]}" | sort); do printf '%-40s %s\n' "$key" "${SAMP[$key]}"; done
  for key in $(printf '%s\n' "${!ERRC[@]}" | sort); do printf '%-40s %s error(s)\n' "$key" "${ERRC[$key]}"; done
  echo '```'
}

report >"$RESULTS/latest.md.tmp" && mv "$RESULTS/latest.md.tmp" "$RESULTS/latest.md"
cat "$RESULTS/latest.md"
log "report written to bench/results/latest.md (logs in bench/results/logs/)"
exit 0
}

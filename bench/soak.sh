#!/usr/bin/env bash
# ddlguard soak: N concurrent clients (default 1,000) through one ddlguard for a long time
# (default 10 minutes) with random disconnects, cancels, COPY, large values, TLS, DDL and
# denials; every answer checked. Prints ddlguard's RSS and open descriptors every minute and
# a verdict at the end. Not a timed test: run it by hand, as root.
#
#   bash bench/soak.sh                          # 1,000 clients, 600 s (about 13 min in all)
#   bash bench/soak.sh --duration 120 --clients 200
#   bash bench/soak.sh --asan                   # AddressSanitizer build, 200 clients, 180 s
#
# Options:
#   --duration S     seconds of load (default 600; --asan: 180)
#   --clients N      concurrent clients (default 1000; --asan: 200)
#   --tls-share F    share of client connections that use TLS to ddlguard (default 0.3)
#   --threads T      client threads (default 2)
#   --interval S     seconds between samples (default 60; shorter runs: duration/6, at least 10)
#   --asan           use an ASan+UBSan build (build-soak-asan/); leaks and sanitizer reports fail
#   --heap           also report glibc's heap in use (gdb calls malloc_stats() in ddlguard at each
#                    sample, pausing it for about a second): tells a leak from fragmentation
#   --ops SPEC       change the clients' operation mix, e.g. all=0,simple=1 (soak_client --help)
#   --no-build       use the existing build-soak/ (or build-soak-asan/) binary as it is
#   --git-head       build the committed HEAD (git archive) in the temporary directory instead of
#                    the working tree, so the result names one commit (takes a minute or two)
#   --keep           keep the temporary directory (PostgreSQL data, logs, configs)
# Output: the per-sample table and the verdict on stdout and in bench/results/soak-<date>.txt;
# exit status 0 only when the verdict passes. See bench/README.md, "Soak".
set -uo pipefail
{ # One compound command: bash parses it whole before running, so editing this file while a
  # soak runs cannot derail that run.

SELF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$SELF_DIR/.." && pwd)
PGBIN=/usr/lib/postgresql/15/bin

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FATAL: $*"; exit 2; }

DURATION="" CLIENTS="" TLS_SHARE=0.3 THREADS=2 INTERVAL="" ASAN=0 KEEP=0 NO_BUILD=0 HEAP=0 OPS="" GIT_HEAD=0
while [ $# -gt 0 ]; do
  case $1 in
    --duration) DURATION=$2; shift 2 ;;
    --clients) CLIENTS=$2; shift 2 ;;
    --tls-share) TLS_SHARE=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --interval) INTERVAL=$2; shift 2 ;;
    --asan) ASAN=1; shift ;;
    --heap) HEAP=1; shift ;;
    --ops) OPS=$2; shift 2 ;;
    --no-build) NO_BUILD=1; shift ;;
    --git-head) GIT_HEAD=1; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (--help)" ;;
  esac
done
if [ "$ASAN" = 1 ]; then DURATION=${DURATION:-180} CLIENTS=${CLIENTS:-200}
else DURATION=${DURATION:-600} CLIENTS=${CLIENTS:-1000}; fi
for v in DURATION CLIENTS THREADS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "--${v,,} must be a positive integer (got '${!v}')"
done
[[ $TLS_SHARE =~ ^(0(\.[0-9]+)?|1(\.0*)?)$ ]] || die "--tls-share must be between 0 and 1"
if [ -z "$INTERVAL" ]; then
  INTERVAL=60
  [ "$DURATION" -lt 360 ] && INTERVAL=$(( DURATION / 6 < 10 ? 10 : DURATION / 6 ))
fi
[[ $INTERVAL =~ ^[1-9][0-9]*$ ]] || die "--interval must be a positive integer"
[ "$(id -u)" = 0 ] || die "run as root (PostgreSQL and ddlguard run as the postgres user via setpriv)"
[ "$HEAP" = 1 ] && { command -v gdb >/dev/null || die "--heap needs gdb"; }
[ "$HEAP" = 1 ] && [ "$ASAN" = 1 ] && die "--heap reads glibc's malloc: not with --asan"

# ---------------------------------------------------------------------------------------------
# Cleanup: every process we start is stopped by the EXIT trap (also after Ctrl-C and TERM).
# ---------------------------------------------------------------------------------------------
W="" DG_PID="" CLIENT_PID="" PG_STARTED=0 CLEANED=0
alive() {  # pid -> running and not a zombie
  local st
  [ -n "${1:-}" ] || return 1
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
kill_pid() {  # pid grace(1/10 s) signal: signal, wait, KILL, reap
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
AS_PG=(setpriv --reuid=postgres --regid=postgres --init-groups --)
cleanup() {
  [ "$CLEANED" = 1 ] && return 0
  CLEANED=1
  trap '' INT TERM
  kill_pid "$CLIENT_PID" 100 INT
  kill_pid "$DG_PID" 100 INT
  if [ "$PG_STARTED" = 1 ]; then
    "${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$W/pg/data" -m immediate -w -t 60 stop >/dev/null 2>&1 ||
      { pid=$(head -1 "$W/pg/data/postmaster.pid" 2>/dev/null); [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; }
  fi
  if [ -n "$W" ] && [ -d "$W" ]; then
    cd / || true
    if [ "$KEEP" = 1 ]; then log "kept $W"; else rm -rf "$W"; fi
  fi
}
trap cleanup EXIT
trap 'log "interrupted, cleaning up"; exit 130' INT
trap 'log "terminated, cleaning up"; exit 143' TERM

unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGPASSWORD PGPASSFILE PGSERVICE PGSERVICEFILE \
      PGSSLMODE PGREQUIRESSL PGSSLCERT PGSSLKEY PGSSLROOTCERT PGOPTIONS PGAPPNAME PGTARGETSESSIONATTRS
# sslmode=require must not turn into verify-ca because some ~/.postgresql/root.crt exists.
export PGGSSENCMODE=disable PGCONNECT_TIMEOUT=15 PGPASSFILE=/nonexistent/ddlguard-soak/pgpass \
       PGSSLROOTCERT=/nonexistent/ddlguard-soak/root.crt

free_port() {  # -> an unused loopback TCP port below the ephemeral range
  local p i
  for ((i = 0; i < 500; i++)); do
    p=$((20000 + RANDOM % 10000))
    [[ " ${USED_PORTS:-} " == *" $p "* ]] && continue
    if [ -z "$(ss -Htln "sport = :$p" 2>/dev/null)" ]; then USED_PORTS="${USED_PORTS:-} $p"; echo "$p"; return 0; fi
  done
  die "no free port"
}

# ---------------------------------------------------------------------------------------------
# Set-up: packages, build, PostgreSQL, ddlguard
# ---------------------------------------------------------------------------------------------
RUN_DATE=$(date '+%F %T %Z')
STAMP=$(date +%Y%m%d-%H%M%S)
log "soak: $CLIENTS clients, ${DURATION}s, tls-share $TLS_SHARE, samples every ${INTERVAL}s$( [ "$ASAN" = 1 ] && echo ", ASan build")"
bash "$TOP/scripts/install-deps.sh" || die "scripts/install-deps.sh failed"
for b in "$PGBIN/initdb" "$PGBIN/pg_ctl" psql openssl cc pkg-config ss setpriv; do
  command -v "$b" >/dev/null || die "missing $b"
done

# Descriptors: ddlguard holds two per client (plus cancels); the client one per connection.
need_fd=$((4 * CLIENTS + 2048))
[ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$need_fd" ] && ulimit -Hn "$need_fd" 2>/dev/null
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge "$need_fd" ] || die "ulimit -n is $(ulimit -n), need $need_fd"

W=$(mktemp -d /tmp/ddlguard-soak.XXXXXX) || die "mktemp failed"
chmod 755 "$W"
mkdir -p "$W/pg" "$W/tls"
chown postgres:postgres "$W/pg" "$W/tls"

configure_build() {  # srcdir builddir
  if [ "$ASAN" = 1 ]; then
    (cd "$2" && "$1/configure" CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer" \
      LDFLAGS="-fsanitize=address,undefined" >configure.out 2>&1) || die "configure failed ($2/configure.out)"
  else
    (cd "$2" && "$1/configure" CFLAGS="-O2 -g" >configure.out 2>&1) || die "configure failed ($2/configure.out)"
  fi
}
if [ "$GIT_HEAD" = 1 ]; then
  DG_GIT=$(git -C "$TOP" rev-parse --short HEAD) || die "not a git checkout"
  log "building ddlguard from git HEAD $DG_GIT in $W/src"
  mkdir -p "$W/src/build"
  git -C "$TOP" archive HEAD | tar -x -C "$W/src" || die "git archive failed"
  (cd "$W/src" && autoreconf -fi >/dev/null 2>&1) || die "autoreconf failed"
  configure_build "$W/src" "$W/src/build"
  make -s -C "$W/src/build" -j2 ddlguard >"$W/src/build/make.out" 2>&1 || die "make failed ($W/src/build/make.out)"
  BUILD=$W/src/build
else
  if [ "$ASAN" = 1 ]; then BUILD=$TOP/build-soak-asan; else BUILD=$TOP/build-soak; fi
  if [ "$NO_BUILD" != 1 ]; then
    if [ ! -x "$TOP/configure" ]; then
      log "no ./configure yet: scripts/build.sh"
      bash "$TOP/scripts/build.sh" >/dev/null || die "scripts/build.sh failed"
    fi
    mkdir -p "$BUILD"
    if [ ! -f "$BUILD/Makefile" ] || [ "$TOP/configure" -nt "$BUILD/Makefile" ]; then
      log "configuring $BUILD"
      configure_build "$TOP" "$BUILD"
    fi
    log "building $BUILD/ddlguard"
    make -s -C "$BUILD" -j2 ddlguard >"$BUILD/make.out" 2>&1 || die "make failed ($BUILD/make.out)"
  fi
  DG_GIT=$(git -C "$TOP" rev-parse --short HEAD 2>/dev/null)$( [ -n "$(git -C "$TOP" status --porcelain -- proxy policies protocol lua-scripts 2>/dev/null | head -1)" ] && echo " + uncommitted changes in the working tree")
fi
[ -x "$BUILD/ddlguard" ] || die "$BUILD/ddlguard does not exist"
# A private copy: a rebuild during the soak must not change what runs.
cp "$BUILD/ddlguard" "$W/ddlguard" && chmod 755 "$W/ddlguard" || die "cannot copy ddlguard"

log "compiling bench/soak_client.c"
cc -O2 -g -Wall -Wextra -pthread -o "$W/soak_client" "$SELF_DIR/soak_client.c" \
  $(pkg-config --cflags --libs libpq libssl libcrypto) -lm >"$W/soak_client.build" 2>&1 ||
  die "cannot compile bench/soak_client.c: $(head -c 600 "$W/soak_client.build")"

openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj "/CN=127.0.0.1" \
  -keyout "$W/tls/server.key" -out "$W/tls/server.crt" >"$W/openssl.log" 2>&1 || die "openssl req failed"
chown postgres:postgres "$W/tls/server.key" "$W/tls/server.crt"
chmod 600 "$W/tls/server.key"

PG_PORT=$(free_port)
DG_PORT=$(free_port)
METRICS_PORT=$(free_port)
# Every client is one backend (ddlguard does not pool); add room for backends that are still
# ending after their client vanished, ddlguard's side connections and the monitor's psql.
MAXCONN=$((CLIENTS + 150))
log "initdb + PostgreSQL 15 on 127.0.0.1:$PG_PORT (max_connections=$MAXCONN)"
"${AS_PG[@]}" "$PGBIN/initdb" -D "$W/pg/data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
  >"$W/initdb.log" 2>&1 || die "initdb failed ($W/initdb.log)"
cat >>"$W/pg/data/postgresql.conf" <<EOF

# --- ddlguard soak ---
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$W/pg'
max_connections = $MAXCONN
shared_buffers = 128MB
work_mem = 4MB
ssl = on
ssl_cert_file = '$W/tls/server.crt'
ssl_key_file = '$W/tls/server.key'
password_encryption = 'scram-sha-256'
# A backend whose client (ddlguard's upstream leg) went away stops within a second even
# in the middle of a pg_sleep, instead of holding its locks until the sleep ends.
client_connection_check_interval = 1s
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
max_wal_size = 2GB
log_min_messages = warning
log_connections = off
log_disconnections = off
EOF
# soak_scram logs in with SCRAM over TLS on both legs: ddlguard then terminates SCRAM itself.
cat >"$W/pg/data/pg_hba.conf" <<EOF
local   all all                     trust
hostssl all soak_scram 127.0.0.1/32 scram-sha-256
host    all soak_scram 127.0.0.1/32 reject
host    all all        127.0.0.1/32 trust
EOF
touch "$W/postgres.log" && chown postgres:postgres "$W/postgres.log"
PG_STARTED=1
"${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$W/pg/data" -l "$W/postgres.log" -w -t 120 start >/dev/null 2>&1 ||
  die "PostgreSQL did not start ($W/postgres.log)"

pq() { PGSSLMODE=disable psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "${PQ_DB:-soak}" "$@"; }
SCRAM_PW=soak-$RANDOM$RANDOM
PQ_DB=postgres pq -c "CREATE DATABASE soak" || die "CREATE DATABASE failed"
pq -c "CREATE ROLE soak_scram LOGIN SUPERUSER PASSWORD '$SCRAM_PW'" \
   -c "CREATE TABLE soak_fixed (id int)" \
   -c "DO \$\$ BEGIN FOR i IN 0 .. $((CLIENTS - 1)) LOOP
         EXECUTE format('CREATE TABLE soak_c%s (batch_id bigint, k int, v text)', i);
         EXECUTE format('CREATE INDEX ON soak_c%s (batch_id)', i);
       END LOOP; END \$\$" || die "cannot create the soak tables"

cat >"$W/ddlguard.ini" <<EOF
[ddlguard]
listen_addr = 127.0.0.1
listen_port = $DG_PORT
client_tls_sslmode = allow
client_tls_cert_file = $W/tls/server.crt
client_tls_key_file = $W/tls/server.key
server_tls_sslmode = disable
max_client_conn = $((CLIENTS + 500))
log_level = info
rules = default
monitor_user = postgres
audit_log = $W/audit.jsonl
metrics_listen = 127.0.0.1:$METRICS_PORT

[databases]
soak = host=127.0.0.1 port=$PG_PORT dbname=soak
soak_tls = host=127.0.0.1 port=$PG_PORT dbname=soak server_tls_sslmode=require environment=staging
EOF
touch "$W/audit.jsonl" "$W/ddlguard.log"
chown postgres:postgres "$W/ddlguard.ini" "$W/audit.jsonl" "$W/ddlguard.log"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=0 UBSAN_OPTIONS=print_stacktrace=1
"${AS_PG[@]}" "$W/ddlguard" -c "$W/ddlguard.ini" >>"$W/ddlguard.log" 2>&1 </dev/null &
DG_PID=$!
dg() { PGSSLMODE=${DG_SSL:-disable} psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$DG_PORT" -U postgres -d "${DG_DB:-soak}" "$@"; }
for ((i = 0; i < 300; i++)); do
  alive "$DG_PID" || die "ddlguard exited at start: $(tail -n 5 "$W/ddlguard.log")"
  dg -c "SELECT 1" >/dev/null 2>&1 && break
  sleep 0.1
done
[ "$i" -lt 300 ] || die "ddlguard does not answer"

# Warm-up through both routes and TLS: opens ddlguard's side connections (facts, ledger),
# loads the rule library's lazy parts, so the baseline below counts what a steady state has.
for db in soak soak_tls; do
  for ssl in disable require; do
    DG_DB=$db DG_SSL=$ssl dg -c "BEGIN" -c "CREATE TABLE soak_warm (id bigint)" -c "ALTER TABLE soak_warm ADD COLUMN v text" \
      -c "DROP TABLE soak_warm" -c "COMMIT" -c "ALTER TABLE soak_fixed ALTER COLUMN id SET STATISTICS 100" \
      >/dev/null 2>>"$W/warmup.err" || die "warm-up through ddlguard ($db, sslmode=$ssl) failed: $(tail -n 3 "$W/warmup.err")"
  done
done
sleep 2

# ---------------------------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------------------------
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$DG_PID/status" 2>/dev/null; }
fd_count() { ls "/proc/$DG_PID/fd" 2>/dev/null | wc -l; }
# ddlguard's TCP connections to PostgreSQL: client sessions' upstream legs and side connections.
upstream_conns() { ss -Htnp state established "( dport = :$PG_PORT )" 2>/dev/null | grep -c "pid=$DG_PID,"; }
metric() {  # name -> value from ddlguard's /metrics (no curl needed)
  local v
  v=$(exec 3<>"/dev/tcp/127.0.0.1/$METRICS_PORT" 2>/dev/null &&
      printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 && timeout 5 cat <&3 | awk -v n="$1" '$1 == n { print $2 }')
  echo "${v:-?}"
}
backends() { pq -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()" 2>/dev/null || echo "?"; }
stat_get() { awk -v k="$1" '$1 == k { print $2; exit }' "$W/stats.txt" 2>/dev/null; }
heap_mib() {  # glibc's bytes in use in ddlguard (malloc_stats() prints them on its stderr), MiB
  [ "$HEAP" = 1 ] || { echo -; return; }
  local off
  off=$(stat -c %s "$W/ddlguard.log")
  timeout 30 gdb -p "$DG_PID" -batch -ex 'call (void)malloc_stats()' >/dev/null 2>&1
  tail -c +"$((off + 1))" "$W/ddlguard.log" | awk '/^Total \(incl. mmap\):/ { t = 1 } t && /^in use bytes/ { printf "%.1f", $NF / 1048576; exit }'
}

BASE_RSS=$(rss_kib)
BASE_FDS=$(fd_count)
BASE_UP=$(upstream_conns)
BASE_BE=$(backends)
BASE_HEAP=$(heap_mib)
log "ddlguard pid $DG_PID on 127.0.0.1:$DG_PORT: baseline RSS $BASE_RSS KiB, $BASE_FDS fds ($BASE_UP side connections to PostgreSQL)"

ROWS=()       # table rows
RSS_S=()      # RSS per sample, KiB
HEAP_S=()     # glibc heap in use per sample, MiB (--heap), else -
LOAD_RSS=()   # RSS of the samples under load, KiB
FMT='%-6s %8s %9s %9s %6s %8s %9s %9s %8s %9s %6s %6s %8s %7s'
# shellcheck disable=SC2059
printf -v HDR "$FMT" \
  "sample" "t(s)" "RSS(MiB)" "heap(MiB)" "fds" "sessions" "clients" "backends" "ops/s" "ops ok" "wrong" "errors" "aborted" "logins"
sample() {  # label elapsed
  local rss fds ses cli be ok wr er ab lg rate heap
  rss=$(rss_kib); fds=$(fd_count); ses=$(metric ddlguard_sessions); be=$(backends); heap=$(heap_mib)
  cli=$(stat_get connected); ok=$(stat_get ops_ok); wr=$(stat_get ops_wrong); er=$(stat_get ops_error)
  ab=$(stat_get ops_aborted); lg=$(stat_get logins)
  rate=$(awk -v a="${ok:-0}" -v b="${LAST_OK:-0}" -v t="$2" -v u="${LAST_T:-0}" 'BEGIN { if (t > u) printf "%.0f", (a - b) / (t - u); else print "-" }')
  LAST_OK=${ok:-0}; LAST_T=$2
  RSS_S+=("${rss:-0}"); HEAP_S+=("${heap:--}")
  local row
  # shellcheck disable=SC2059
  printf -v row "$FMT" "$1" "$2" \
    "$(awk -v r="${rss:-0}" 'BEGIN { printf "%.1f", r / 1024 }')" "${heap:--}" "${fds:-?}" "$ses" "${cli:-0}" "$be" "$rate" \
    "${ok:-0}" "${wr:-0}" "${er:-0}" "${ab:-0}" "${lg:-0}"
  ROWS+=("$row")
  echo "$row"
}

# ---------------------------------------------------------------------------------------------
# The load
# ---------------------------------------------------------------------------------------------
# Warm: every client logs in (spread over 20 s) and stays idle until WARM; then the load; then
# hold: what runs finishes and every client stays logged in and idle until the end of HOLD.
# The samples idle0 (end of warm) and idle1 (hold, nothing running) see the same number of
# open sessions with nothing in flight: memory that stays between them stays per session.
WARM=$((25 + CLIENTS / 100))
HOLD=60
log "starting $CLIENTS clients: log in and idle ${WARM}s, load ${DURATION}s, idle ${HOLD}s"
"$W/soak_client" --clients "$CLIENTS" --threads "$THREADS" --duration "$DURATION" --warm "$WARM" --hold "$HOLD" \
  --host 127.0.0.1 --port "$DG_PORT" --user postgres --db soak --tls-db soak_tls --tls-share "$TLS_SHARE" \
  --scram-user soak_scram --scram-password "$SCRAM_PW" --stats "$W/stats.txt" ${OPS:+--ops "$OPS"} \
  >"$W/client.out" 2>"$W/client.err" </dev/null &
CLIENT_PID=$!
T0=$SECONDS
echo "$HDR"
LAST_OK=0 LAST_T=0
# shellcheck disable=SC2059
printf -v row "$FMT" "base" 0 \
  "$(awk -v r="$BASE_RSS" 'BEGIN { printf "%.1f", r / 1024 }')" "${BASE_HEAP:--}" "$BASE_FDS" 0 0 "$BASE_BE" - 0 0 0 0 0
ROWS+=("$row"); echo "$row"
DG_DIED=0
n=0 IDLE0="" IDLE1="" QUIET_SINCE=""
while alive "$CLIENT_PID"; do
  sleep 1
  if ! alive "$DG_PID"; then DG_DIED=1; log "ddlguard DIED during the soak"; break; fi
  el=$((SECONDS - T0))
  ph=$(stat_get phase)
  if [ -z "$IDLE0" ] && [ "$el" -ge $((WARM - 5)) ]; then
    LAST_T=$el LAST_OK=0
    sample idle0 "$el"; IDLE0=${#RSS_S[@]}
  elif [ -n "$IDLE0" ] && [ "$el" -ge $((WARM + (n + 1) * INTERVAL)) ] && [ $(((n + 1) * INTERVAL)) -le "$DURATION" ]; then
    n=$((n + 1))
    sample "$((n * INTERVAL / 60))m$( [ $((n * INTERVAL % 60)) -ne 0 ] && echo "$((n * INTERVAL % 60))s")" "$el"
    LOAD_RSS+=("${RSS_S[-1]}")
  elif [ -z "$IDLE1" ] && [ "$ph" = hold ]; then
    # Sample once nothing has run for 5 s (or just before the hold ends).
    if [ "$(stat_get in_op)" = 0 ]; then QUIET_SINCE=${QUIET_SINCE:-$el}; else QUIET_SINCE=""; fi
    if { [ -n "$QUIET_SINCE" ] && [ $((el - QUIET_SINCE)) -ge 5 ]; } || [ "$el" -ge $((WARM + DURATION + HOLD - 8)) ]; then
      sample idle1 "$el"; IDLE1=${#RSS_S[@]}
      kill -INT "$CLIENT_PID" 2>/dev/null   # enough holding: every client closes now
    fi
  fi
done
wait "$CLIENT_PID"; CLIENT_RC=$?
CLIENT_PID=""
LOAD_END=$((SECONDS - T0))
log "clients finished after ${LOAD_END}s (exit $CLIENT_RC)"

# After the clients: every session closes, ddlguard's descriptors return to the baseline.
END_FDS="" END_UP="" END_SES="" END_RSS="" END_BE=""
if alive "$DG_PID"; then
  for ((i = 0; i < 60; i++)); do
    END_SES=$(metric ddlguard_sessions)
    END_FDS=$(fd_count); END_UP=$(upstream_conns)
    [ "$END_SES" = 0 ] && [ $((END_FDS - END_UP)) -le $((BASE_FDS - BASE_UP)) ] && break
    sleep 1
  done
  sleep 1
  END_FDS=$(fd_count); END_UP=$(upstream_conns); END_RSS=$(rss_kib); END_BE=$(backends)
  # shellcheck disable=SC2059
  printf -v row "$FMT" "after" "$((SECONDS - T0))" \
    "$(awk -v r="$END_RSS" 'BEGIN { printf "%.1f", r / 1024 }')" "$(heap_mib)" "$END_FDS" "$END_SES" "$(stat_get connected)" "$END_BE" - \
    "$(stat_get ops_ok)" "$(stat_get ops_wrong)" "$(stat_get ops_error)" "$(stat_get ops_aborted)" "$(stat_get logins)"
  ROWS+=("$row"); echo "$row"
  METRICS_END=$(exec 3<>"/dev/tcp/127.0.0.1/$METRICS_PORT" 2>/dev/null &&
    printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 && timeout 5 cat <&3 | grep '^ddlguard_' | grep -v '_bucket')
fi

# Stop ddlguard: SIGTERM drains (nothing is left to drain) and exits; under ASan LeakSanitizer
# reports what was never freed at that exit.
DG_RC=""
if alive "$DG_PID"; then
  kill -TERM "$DG_PID"
  for ((i = 0; i < 300; i++)); do alive "$DG_PID" || break; sleep 0.1; done
  if alive "$DG_PID"; then kill -KILL "$DG_PID"; DG_RC="did not exit on SIGTERM within 30 s"; fi
  wait "$DG_PID"; rc=$?; [ -z "$DG_RC" ] && DG_RC=$rc
else
  wait "$DG_PID"; rc=$?; DG_RC="died ($rc$( [ $rc -gt 128 ] && echo ", signal $(kill -l $((rc - 128)) 2>/dev/null)"))"
fi
DG_PID=""

# ---------------------------------------------------------------------------------------------
# Verdict
# ---------------------------------------------------------------------------------------------
FAILS=()
fail() { FAILS+=("$*"); }

# RSS flat: the last sample under load against the second one (the first is still the ramp:
# logins, first big values, malloc arenas reaching their working size). Flat means at most
# 10 % or 8 MiB above it, whichever is larger: with up to ~50 values of 4 MB in flight at
# once, a few MiB either way is the load's shape, not a leak; a leak of even one small
# allocation per query (millions of queries) grows far past that.
NS=${#LOAD_RSS[@]}
RSS_RULE="n/a"
if [ "$NS" -ge 3 ]; then
  REF=${LOAD_RSS[1]} LAST=${LOAD_RSS[$((NS - 1))]}
  LIMIT=$(awk -v r="$REF" 'BEGIN { a = r * 1.10; b = r + 8192; printf "%d", (a > b) ? a : b }')
  RSS_RULE="last $((LAST / 1024)) MiB vs sample 2 $((REF / 1024)) MiB (limit $((LIMIT / 1024)) MiB)"
  if [ "$ASAN" = 1 ]; then RSS_RULE="$RSS_RULE — not judged under ASan (quarantine); LeakSanitizer decides"
  elif [ "$LAST" -gt "$LIMIT" ]; then fail "RSS grew: $RSS_RULE"; fi
else
  fail "too few samples ($NS) to judge RSS: run longer or lower --interval"
fi
# The same sessions open and idle before (idle0) and after (idle1) the load: what the heap
# (--heap) holds more at idle1 is kept per session or for good. RSS cannot tell (malloc keeps
# freed memory), the heap can.
IDLE_RULE="n/a"
if [ -n "$IDLE0" ] && [ -n "$IDLE1" ]; then
  H0=${HEAP_S[$((IDLE0 - 1))]} H1=${HEAP_S[$((IDLE1 - 1))]}
  IDLE_RULE="RSS idle0 $((RSS_S[IDLE0 - 1] / 1024)) MiB, idle1 $((RSS_S[IDLE1 - 1] / 1024)) MiB"
  if [ "$H0" != - ] && [ "$H1" != - ]; then
    IDLE_RULE+="; heap idle0 $H0 MiB, idle1 $H1 MiB"
  fi
fi

[ "$DG_DIED" = 0 ] || fail "ddlguard died during the soak"
[[ $DG_RC == 0 ]] || fail "ddlguard's exit after SIGTERM: $DG_RC"
if [ -n "$END_FDS" ]; then
  FD_RULE="$END_FDS fds after the clients left ($END_UP side connections) vs baseline $BASE_FDS ($BASE_UP side connections)"
  [ $((END_FDS - END_UP)) -le $((BASE_FDS - BASE_UP)) ] || fail "descriptors not back to baseline: $FD_RULE"
  [ "$END_SES" = 0 ] || fail "ddlguard still counts $END_SES sessions after the clients left"
else
  FD_RULE="n/a (ddlguard not running)"
fi

WRONG=$(stat_get ops_wrong) ERRS=$(stat_get ops_error) LOGIN_ERR=$(stat_get login_errors)
CSENT=$(stat_get cancels_sent) CLOST=$(stat_get cancels_lost) CSE=$(stat_get cancel_send_errors)
CSTRAY=$(stat_get stray_cancels)
[ "${WRONG:-x}" = 0 ] || fail "${WRONG:-?} wrong answers"
[ "${ERRS:-x}" = 0 ] || fail "${ERRS:-?} operations with unexpected errors"
[ "${LOGIN_ERR:-x}" = 0 ] || fail "${LOGIN_ERR:-?} failed logins"
[ "${CSE:-x}" = 0 ] || fail "${CSE:-?} cancel requests could not be sent"
# A cancel racing its own query may legitimately be dropped (ddlguard ignores a cancel for a
# session with nothing in flight, PostgreSQL one for a backend still reading the query); the
# clients wait 0.2-0.7 s, so more than 1 % lost is a bug.
if [ "${CSENT:-0}" -gt 0 ] && [ $((CLOST * 100)) -gt "$CSENT" ]; then fail "$CLOST of $CSENT cancels lost (> 1 %)"; fi
# A stray cancel: PostgreSQL signals a cancelled backend twice (its pid, then its process
# group); on a loaded machine the second signal can hit the client's next statement. The same
# rate shows without ddlguard (soak_client straight at PostgreSQL); more than 1 % is not that.
if [ "${CSENT:-0}" -gt 0 ] && [ $((${CSTRAY:-0} * 100)) -gt "$CSENT" ]; then fail "$CSTRAY stray cancels in $CSENT (> 1 %)"; fi
[ "$CLIENT_RC" = 0 ] || fail "soak_client exited with $CLIENT_RC"
[ "$(stat_get done)" = 1 ] || fail "soak_client did not finish cleanly"
if [ -n "$END_BE" ] && [ "$END_BE" != "?" ] && [ "$END_BE" -gt "$END_UP" ]; then
  fail "$END_BE PostgreSQL client backends left after the clients left (ddlguard holds $END_UP side connections)"
fi

# ddlguard's log: LOG lines are logins, session ends and decisions. Two WARNINGs are expected:
# a client that vanished inside a transaction ("at session end": the uncommitted-transaction
# rule), and a statement that went on without live facts because the one side connection
# had not reached its query within facts_timeout (the soak runs far more DDL at once than a
# migration does; counted in the report). Any other WARNING or ERROR fails, as does any
# sanitizer report.
LOG=$W/ddlguard.log
SAN=$(grep -cE 'AddressSanitizer|LeakSanitizer|runtime error:|UndefinedBehaviorSanitizer' "$LOG")
[ "$SAN" = 0 ] || fail "$SAN sanitizer report lines in ddlguard's log"
FACTS_LATE='WARNING facts: waited [0-9]+ s for side connection .* behind other queries$'
EXPECTED_WARN="WARNING C-[0-9]+ [^ ]+: at session end: .*\\(rule uncommitted-transaction\\)\$|$FACTS_LATE"
UNEXP=$(grep -E '^[0-9-]+ [0-9:.]+ [A-Z]+ \[[0-9]+\] (WARNING|ERROR) ' "$LOG" | grep -vcE "$EXPECTED_WARN")
[ "$UNEXP" = 0 ] || fail "$UNEXP unexpected WARNING/ERROR lines in ddlguard's log"
AUDIT=$("$W/ddlguard" audit verify "$W/audit.jsonl" 2>&1 | tail -n 1)
"$W/ddlguard" audit verify "$W/audit.jsonl" >/dev/null 2>&1 || fail "audit log chain: $AUDIT"

report() {
  echo "# ddlguard soak, $RUN_DATE"
  echo
  echo "- Machine: $(uname -m), $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r); load average at end $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- ddlguard: git $DG_GIT, $( [ "$ASAN" = 1 ] && echo "ASan+UBSan build" || echo "-O2 -g build") in ${BUILD#$W/}; rules = default, monitor_user, audit_log, client TLS allow, routes soak (plain upstream) and soak_tls (TLS upstream, staging ledger)"
  echo "- $("$PGBIN/postgres" --version), max_connections $MAXCONN; libpq $(pkg-config --modversion libpq); $(openssl version | cut -d' ' -f1-2)"
  echo "- Load: $CLIENTS clients on $THREADS threads for ${DURATION}s (after ${WARM}s logged in and idle; then idle again until nothing runs), tls-share $TLS_SHARE, samples every ${INTERVAL}s; the client ran ${LOAD_END}s"
  echo
  echo '```'
  echo "$HDR"
  printf '%s\n' "${ROWS[@]}"
  echo '```'
  echo
  echo "RSS = ddlguard's VmRSS; fds = entries in /proc/PID/fd; sessions = ddlguard_sessions; clients = the client's open connections; backends = PostgreSQL client backends; ops/s over the last interval; ops ok / wrong / errors / aborted (connection dropped on purpose mid-operation) and logins are running totals."
  echo
  echo "## Client totals"
  echo
  echo '```'
  grep -vE '^(elapsed|done|kind) ' "$W/stats.txt" 2>/dev/null | grep -v '^op\.' | paste -sd' ' | fold -s -w 110
  echo
  echo "operation      ok      wrong  errors  aborted"
  awk '$1 ~ /^op\./ { sub(/^op\./, "", $1); printf "%-12s %9s %7s %7s %8s\n", $1, $2, $3, $4, $5 }' "$W/stats.txt" 2>/dev/null
  if grep -q '^kind ' "$W/stats.txt" 2>/dev/null; then echo; echo "errors by kind:"; grep '^kind ' "$W/stats.txt" | sed 's/^kind /  /'; fi
  echo '```'
  echo
  echo "## ddlguard"
  echo
  echo "- log: $(grep -cE '^[0-9-]+ [0-9:.]+ [A-Z]+ \[[0-9]+\] LOG ' "$LOG") LOG lines; expected WARNINGs: $(grep -cE 'at session end: .*\(rule uncommitted-transaction\)$' "$LOG") clients left inside a transaction, $(grep -cE "$FACTS_LATE" "$LOG") statements went on without facts (side connection busy); $UNEXP unexpected WARNING/ERROR lines, $SAN sanitizer lines"
  echo "- session ends by reason:"
  grep -oE ' closing: .*' "$LOG" | sed -E 's/ closing: //; s/[0-9]+/N/g' | sort | uniq -c | sort -rn | head -n 15 | sed 's/^/    /'
  if [ "$UNEXP" != 0 ]; then
    echo "- unexpected log lines (first 10):"
    grep -E '^[0-9-]+ [0-9:.]+ [A-Z]+ \[[0-9]+\] (WARNING|ERROR) ' "$LOG" | grep -vE "$EXPECTED_WARN" | head -n 10 | cut -c1-300 | sed 's/^/    /'
  fi
  if [ "$SAN" != 0 ]; then
    echo "- sanitizer report (first 20 lines):"
    grep -E -A 12 'AddressSanitizer|LeakSanitizer|runtime error:' "$LOG" | head -n 20 | sed 's/^/    /'
  fi
  echo "- audit log: $(wc -l <"$W/audit.jsonl") records; verify: $AUDIT"
  echo "- exit after SIGTERM: $DG_RC"
  [ -n "${METRICS_END:-}" ] && echo "- metrics at the end: $(echo "$METRICS_END" | grep -E '^ddlguard_(sessions_total|logins_total|login_failures_total|cancel_requests_total|protocol_errors_total|retries_total|statements_total)' | sed 's/^ddlguard_//' | paste -sd' ')"
  echo
  echo "## Verdict"
  echo
  echo "- RSS: $RSS_RULE"
  echo "- idle before and after the load: $IDLE_RULE"
  echo "- descriptors: $FD_RULE"
  echo "- answers: ${WRONG:-?} wrong, ${ERRS:-?} unexpected errors, ${LOGIN_ERR:-?} failed logins; cancels: ${CSENT:-?} sent, $(stat_get cancels_ok) cancelled, ${CLOST:-?} lost, ${CSTRAY:-?} stray (hit the next statement)"
  if [ ${#FAILS[@]} -eq 0 ]; then
    echo "- **PASS**"
  else
    for f in "${FAILS[@]}"; do echo "- FAIL: $f"; done
    echo "- **FAIL**"
  fi
  if [ -s "$W/client.err" ]; then
    echo
    echo "## Client anomalies (first 30 of $(wc -l <"$W/client.err"))"
    echo
    echo '```'
    head -n 30 "$W/client.err" | cut -c1-300
    echo '```'
  fi
}

mkdir -p "$SELF_DIR/results"
OUT=$SELF_DIR/results/soak-$STAMP$( [ "$ASAN" = 1 ] && echo -asan).txt
report >"$OUT"
echo
cat "$OUT"
log "report: $OUT$( [ "$KEEP" = 1 ] && echo "; logs in $W")"
[ ${#FAILS[@]} -eq 0 ] && exit 0 || exit 1
}

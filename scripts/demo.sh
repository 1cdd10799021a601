#!/usr/bin/env bash
# Builds ddlguard, starts a throwaway PostgreSQL 15 on loopback and ddlguard in front of it,
# and prints the connection string to give a migration tool. Ctrl-C stops both and removes
# the throwaway database. Run as root on Debian 12 (missing packages are installed).
#   DDLGUARD_PORT   where ddlguard listens (default 6432)
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
bash scripts/build.sh

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pgbin=/usr/lib/postgresql/15/bin
dir=$(mktemp -d /tmp/ddlguard-demo.XXXXXX)
pgport=$(free_port)
port=${DDLGUARD_PORT:-6432}
as_pg=()
if [ "$(id -u)" = 0 ]; then
	chown postgres "$dir"
	as_pg=(runuser -u postgres --)
fi

cleanup() {
	trap - EXIT INT TERM
	[ -n "${dg_pid:-}" ] && kill "$dg_pid" 2>/dev/null && wait "$dg_pid" 2>/dev/null
	"${as_pg[@]}" "$pgbin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
	rm -rf "$dir"
	echo "stopped ddlguard and the throwaway PostgreSQL"
}
trap cleanup EXIT INT TERM

echo "starting a throwaway PostgreSQL 15 on 127.0.0.1:$pgport ($dir)"
printf 'app\n' > "$dir/pw"
chmod 644 "$dir/pw"
"${as_pg[@]}" "$pgbin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
	--pwfile="$dir/pw" >/dev/null
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w \
	-o "-p $pgport -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir" start >/dev/null
"$pgbin/psql" -q -h "$dir" -p "$pgport" -U postgres -d postgres \
	-c "CREATE ROLE app LOGIN PASSWORD 'app'" -c "CREATE DATABASE app OWNER app"

"$top/build/ddlguard" --upstream "postgresql://127.0.0.1:$pgport/app?sslmode=disable" \
	--listen "127.0.0.1:$port" --environment demo &
dg_pid=$!
sleep 0.5
kill -0 "$dg_pid" 2>/dev/null || { echo "ddlguard did not start (is port $port free? set DDLGUARD_PORT)"; exit 1; }
cat <<MSG

ddlguard is listening on 127.0.0.1:$port in front of PostgreSQL on 127.0.0.1:$pgport.
Give your migration tool this connection string:

    postgresql://app:app@127.0.0.1:$port/app

e.g.  psql 'postgresql://app:app@127.0.0.1:$port/app' -c 'select version()'
Press Ctrl-C to stop both.
MSG
wait "$dg_pid"

#!/usr/bin/env bash
# Installs every Debian package ddlguard's build, tests and benchmark need.
# Idempotent: packages already present are skipped, apt-get runs only when something is missing.
set -euo pipefail
pkgs=(build-essential autoconf automake libtool pkg-config
      libevent-dev libssl-dev libpq-dev liblua5.4-dev libpg-query-dev libprotobuf-c-dev libidn-dev libcmocka-dev
      postgresql-15 postgresql-client-15 pgbouncer openssl
      python3-psycopg2 libpostgresql-jdbc-java default-jdk-headless
      procps iproute2 util-linux time
      clang libclang-rt-14-dev)
# --clients: also the migration tools tests/clients drives (Debian's; npm ones come from
# tests/clients/node/package.json).
if [ "${1:-}" = "--clients" ]; then
  pkgs+=(python3-alembic python3-django python3-sqlalchemy ruby-activerecord ruby-pg rake
         sqitch libdbd-pg-perl)
  command -v node >/dev/null && command -v npm >/dev/null || pkgs+=(nodejs npm)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing packages: ${missing[*]} (run as root, or install them with apt-get)" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts the packaged services; ddlguard's scripts run their own throwaway servers.
  for svc in pgbouncer; do
    if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then systemctl stop "$svc" || true; fi
    service "$svc" stop >/dev/null 2>&1 || true
  done
fi

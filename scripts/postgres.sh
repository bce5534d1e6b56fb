#!/usr/bin/env bash
# Start (or reuse) a throwaway PostgreSQL cluster "ecert" on 127.0.0.1:55432 for the tests, and
# print the URL to use. Needs Debian's postgresql package (scripts/install.sh installs it).
set -euo pipefail
PORT=${ECERT_TEST_POSTGRES_PORT:-55432}
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
as_postgres() { as_root su postgres -c "$1"; }

command -v pg_createcluster >/dev/null || { echo "postgresql is not installed" >&2; exit 1; }
version=$(ls /usr/lib/postgresql | sort -V | tail -1)
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$version ecert"; then
  as_root pg_createcluster "$version" ecert -p "$PORT" >/dev/null
fi
as_root pg_ctlcluster "$version" ecert start >/dev/null 2>&1 || true
for _ in $(seq 50); do as_postgres "pg_isready -q -p $PORT" && break; sleep 0.2; done
if ! as_postgres "psql -p $PORT -tAc \"SELECT 1 FROM pg_roles WHERE rolname='ecert'\"" | grep -q 1; then
  as_postgres "psql -q -p $PORT -c \"CREATE ROLE ecert LOGIN SUPERUSER PASSWORD 'ecert'\""
fi
echo "postgresql+psycopg://ecert:ecert@127.0.0.1:$PORT/postgres"

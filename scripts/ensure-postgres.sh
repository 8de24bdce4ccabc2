#!/usr/bin/env bash
# Makes sure PostgreSQL answers at 127.0.0.1:5432 for user postgres without a
# password, as the registry's PostgreSQL tests expect; `make test` runs it.
# Installs the Debian package and creates and starts a cluster when needed.
# With IMGMESH_TEST_POSTGRES_URL set the tests use that server instead, and
# this does nothing. Idempotent.
set -euo pipefail

if [[ -n "${IMGMESH_TEST_POSTGRES_URL:-}" ]]; then
  exit 0
fi

sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"

can_login() {
  psql "postgres://postgres@127.0.0.1:5432/postgres" -tAc 'SELECT 1' >/dev/null 2>&1
}

if command -v psql >/dev/null && can_login; then
  exit 0
fi

if ! command -v pg_ctlcluster >/dev/null || [[ -z "$(ls /usr/lib/postgresql 2>/dev/null)" ]]; then
  echo "installing Debian package: postgresql"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi

version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
conf="/etc/postgresql/$version/main"
if [[ ! -d "$conf" ]]; then
  echo "creating PostgreSQL $version cluster main"
  $sudo pg_createcluster --port 5432 "$version" main >/dev/null
  # A cluster made for the tests: trust loopback connections, as they
  # connect as postgres without a password.
  $sudo sed -i '1i host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"
fi

if ! pg_lsclusters --no-header | awk -v v="$version" '$1 == v && $2 == "main" && $4 == "online"' | grep -q .; then
  echo "starting PostgreSQL $version cluster main"
  $sudo pg_ctlcluster --skip-systemctl-redirect "$version" main start
fi

for _ in $(seq 1 150); do
  can_login && exit 0
  sleep 0.2
done
echo "PostgreSQL $version is not accepting password-less connections as postgres at" \
  "127.0.0.1:5432; the registry's PostgreSQL tests need that. Allow it in" \
  "$conf/pg_hba.conf (host all all 127.0.0.1/32 trust) and reload, or point" \
  "IMGMESH_TEST_POSTGRES_URL at a server they may create databases on." >&2
exit 1

#!/usr/bin/env bash
# Make sure the services the tests talk to are up; (re)start any that is down, never skip it.
# Usage: scripts/services.sh            (PostgreSQL; more services join as features need them)
set -euo pipefail

wait_for() {  # wait_for NAME SECONDS CMD...
  local name=$1 secs=$2; shift 2
  for _ in $(seq "$((secs * 5))"); do
    if "$@" >/dev/null 2>&1; then echo "services: $name is up"; return 0; fi
    sleep 0.2
  done
  echo "services: $name did not come up within ${secs}s" >&2
  return 1
}

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
if ! pg_up; then
  echo "services: PostgreSQL is down; starting it"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi
wait_for PostgreSQL 60 pg_up

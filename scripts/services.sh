#!/usr/bin/env bash
# Make sure the services the tests talk to are up; (re)start any that is down, never skip it.
# Usage: scripts/services.sh   (PostgreSQL, Redis, RabbitMQ: the services the tests talk to)
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

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
if ! redis_up; then
  echo "services: Redis is down; starting it"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi
wait_for Redis 30 redis_up

rabbit_up() { python3 -c "import socket; socket.create_connection(('127.0.0.1', 5672), 2)"; }
if ! rabbit_up; then
  echo "services: RabbitMQ is down; starting it"
  rabbitmq-server -detached || true
fi
wait_for RabbitMQ 90 rabbit_up

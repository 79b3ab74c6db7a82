"""Test-only probe run *inside* a test host (`ip netns exec`) for the high-availability tests; prints JSON.

python tests/ha_probe.py sentinels                   -> [{sentinel, master, flags, replicas, sentinels}, ...]
python tests/ha_probe.py role HOST:PORT              -> {"role": "master"|"slave"|..., "primary": "host:port"|null}
python tests/ha_probe.py jobs ID...                  -> {id: {status ("missing" when absent), worker, generation}}
python tests/ha_probe.py started QUEUE               -> entries in the queue's started registry
python tests/ha_probe.py produce SECONDS QUEUE FOLDER JOB_SECONDS
    enqueues a batch of two `mark` jobs every 0.2 s for SECONDS through the producer's own code (the same
    process throughout, riding out the failover), one JSON line per attempt:
    {"batch", "ids", "durable", "problem", "error", "at"}; "error" when the broker refused or was away.

The broker is REDIS_URL (a Sentinel URL in these tests); a server or sentinel is reached with the
password in BROKER_PASSWORD.
"""

import json
import os
import sys
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis  # noqa: E402

from workbench import sentinel_url  # noqa: E402
from workbench.broker import client  # noqa: E402
from workbench.catalog_load import load_catalog  # noqa: E402
from workbench.producer import enqueue, make_batch  # noqa: E402


def _server(host: str, port: int) -> redis.Redis:
    secret = quote(os.environ.get("BROKER_PASSWORD", ""), safe="")
    where = f"[{host}]" if ":" in host else host
    return client(f"redis://:{secret}@{where}:{port}/0", socket_timeout=1, socket_connect_timeout=1)


def sentinels() -> list[dict]:
    target = sentinel_url.parse(os.environ["REDIS_URL"])
    found = []
    for host, port in target.sentinels:
        row: dict = {"sentinel": f"{host}:{port}"}
        try:
            state = _server(host, port).execute_command("SENTINEL", "MASTER", target.service)
            fields = dict(zip(state[::2], state[1::2], strict=False)) if isinstance(state, list) else state
            text = {k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v
                    for k, v in fields.items()}  # fmt: skip
            row.update(
                master=f"{text['ip']}:{text['port']}",
                flags=text["flags"],
                replicas=int(text["num-slaves"]),
                sentinels=int(text["num-other-sentinels"]) + 1,
            )
        except redis.RedisError as exc:
            row["error"] = str(exc)
        found.append(row)
    return found


def role(where: str) -> dict:
    host, _, port = where.rpartition(":")
    try:
        reply = _server(host, int(port)).execute_command("ROLE")
    except redis.RedisError as exc:
        return {"role": None, "error": str(exc)}
    name = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
    primary = None
    if name == "slave":
        primary = f"{reply[1].decode() if isinstance(reply[1], bytes) else reply[1]}:{reply[2]}"
    return {"role": name, "primary": primary}


def jobs(ids: list[str]) -> dict:
    connection = client(os.environ["REDIS_URL"])
    with connection.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hmget(f"rq:job:{job_id}", "status", "worker_name", "workbench_generation")
        rows = pipe.execute()
    found = {}
    for job_id, (status, worker, generation) in zip(ids, rows, strict=True):
        found[job_id] = {
            "status": status.decode() if status else "missing",
            "worker": worker.decode() if worker else None,
            "generation": int(generation) if generation else None,
        }
    return found


def produce(seconds: float, queue: str, folder: str, job_seconds: float) -> None:
    spec = load_catalog()["mark"]
    connection = client(os.environ["REDIS_URL"])
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        line: dict = {"at": time.time()}
        batch = make_batch(spec, {"folder": folder, "seconds": job_seconds}, queue=queue, count=2)
        line["batch"] = batch.batch_id
        try:
            jobs = enqueue(connection, batch)
        except Exception as exc:  # noqa: BLE001 - a probe reports every failure as a line
            line["error"] = f"{type(exc).__name__}: {exc}"
        else:
            confirmation = jobs.confirmation
            line.update(
                ids=[job.id for job in jobs],
                durable=bool(confirmation and confirmation.durable),
                problem=confirmation.problem if confirmation else None,
            )
        print(json.dumps(line), flush=True)
        time.sleep(0.2)


def main(argv: list[str]) -> None:
    if argv[0] == "sentinels":
        print(json.dumps(sentinels()))
    elif argv[0] == "role":
        print(json.dumps(role(argv[1])))
    elif argv[0] == "jobs":
        print(json.dumps(jobs(argv[1:])))
    elif argv[0] == "started":
        print(json.dumps(client(os.environ["REDIS_URL"]).zcard(f"rq:wip:{argv[1]}")))
    elif argv[0] == "produce":
        produce(float(argv[1]), argv[2], argv[3], float(argv[4]))
    else:
        raise SystemExit(f"unknown probe {argv[0]!r}")


if __name__ == "__main__":
    main(sys.argv[1:])

"""Test-only probe run *inside* a test host (`ip netns exec`): reads or enqueues through REDIS_URL, prints JSON.

python tests/hosts_probe.py jobs ID...                       -> {id: {status, worker, generation, result}}
python tests/hosts_probe.py mark FOLDER SECONDS RETRIES QUEUE  -> {"id": ...}  (the test-only `mark` task)
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rq import Retry  # noqa: E402

from workbench.broker import client  # noqa: E402
from workbench.fencing import GENERATION_FIELD  # noqa: E402
from workbench.jobs import fetch_job, make_queue  # noqa: E402


def main(argv: list[str]) -> None:
    connection = client(os.environ["REDIS_URL"])
    if argv[0] == "mark":
        folder, seconds, retries, queue = argv[1], float(argv[2]), int(argv[3]), argv[4]
        job = make_queue(queue, connection).enqueue(
            "tests.marker_tasks.mark",
            kwargs={"folder": folder, "seconds": seconds},
            retry=Retry(max=retries) if retries else None,
            job_timeout=600,
        )
        print(json.dumps({"id": job.id}))
        return
    found = {}
    for job_id in argv[1:]:
        job = fetch_job(job_id, connection)
        result = job.latest_result()
        raw = connection.hget(job.key, GENERATION_FIELD)
        found[job_id] = {
            "status": job.get_status(refresh=False).value,
            "worker": job.worker_name,
            "generation": int(raw) if raw else None,
            "result": result.return_value if result else None,
            "error": (result.exc_string or "")[-300:] if result else None,
        }
    print(json.dumps(found))


if __name__ == "__main__":
    main(sys.argv[1:])

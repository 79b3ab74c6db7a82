"""The image and compose.yaml, for real, with podman: `make test-container` (marker `container`).

Skipped, with the reason, where podman, mmdebstrap or podman-compose is missing. The story:
build the image on a Debian base made from packages, start broker, dashboard and three scaled
consumers configured only through the environment, run jobs across them, look at the dashboard,
and replace the broker's container to show its data lives on the volume.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from base64 import b64encode

import pytest

from .container_support import Stack, build_image, missing_tools, sh
from .support import free_port

pytestmark = [pytest.mark.container, pytest.mark.skipif(missing_tools() is not None, reason=str(missing_tools()))]

CONSUMERS, WORKERS = 3, 2
PASSWORD, DASH_USER, DASH_PASSWORD = "broker-Pw-7e1", "admin", "dash-Pw-51c"


@pytest.fixture(scope="module")
def image():
    tag = f"localhost/rq-workbench:test-{os.getpid()}"
    build_image(tag)
    yield tag
    sh("podman", "rmi", "--force", tag, check=False)


@pytest.fixture(scope="module")
def stack(image):
    port = free_port()
    env = {**os.environ, "WORKBENCH_IMAGE": image, "BROKER_PASSWORD": PASSWORD, "DASHBOARD_USERNAME": DASH_USER,
           "DASHBOARD_PASSWORD": DASH_PASSWORD, "DASHBOARD_PORT": str(port), "WORKERS": str(WORKERS)}  # fmt: skip
    running = Stack(f"wbtest{os.getpid()}", env)
    running.port = port
    try:
        running.compose("up", "-d", "--scale", f"consumer={CONSUMERS}")
        running.wait_healthy("broker")
        wait_for_workers(running, CONSUMERS * WORKERS)
        yield running
    finally:
        running.remove()


def workers(stack: Stack) -> list[dict]:
    done = stack.exec("consumer", "workbench-workers", "list", "--json")
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()] if done.returncode == 0 else []


def wait_for_workers(stack: Stack, count: int, timeout: float = 120) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = workers(stack)
        if len(found) >= count:
            return found
        time.sleep(1)
    raise AssertionError(f"{count} workers never registered; containers: {stack.containers()}")


def produce(stack: Stack, *args: str) -> list[dict]:
    done = stack.exec("consumer", "workbench-producer", *args, "--json", timeout=180)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return [row for row in rows if "id" in row]  # one object per job (the batch's own line comes first, without one)


def test_the_image_is_slim_runs_as_a_user_and_carries_no_build_tools(image):
    inside = sh("podman", "run", "--rm", "--entrypoint", "sh", image, "-c",
                "id -u; command -v gcc cc make pip pip3 || true; python -c 'import pip' 2>&1 | tail -1; "
                "workbench-producer --list-tasks")  # fmt: skip
    lines = inside.stdout.splitlines()
    assert lines[0] == "10001"
    assert "gcc" not in inside.stdout and "/pip" not in inside.stdout
    assert any("No module named 'pip'" in line for line in lines)
    assert "count_primes" in inside.stdout
    size = int(sh("podman", "image", "inspect", "--format", "{{.Size}}", image).stdout)
    assert size < 300 * 2**20, f"the image is {size / 2**20:.0f} MiB"


def test_scaled_consumers_share_the_work(stack):
    before = {w["name"]: int(w["done"]) for w in workers(stack)}
    hosts = {w["hostname"] for w in workers(stack)}
    assert len(hosts) == CONSUMERS  # one hostname per consumer container
    rows = produce(stack, "--task", "sleep", "--param", "seconds=2", "--count", str(CONSUMERS * WORKERS), "--wait")
    assert [row["status"] for row in rows] == ["finished"] * CONSUMERS * WORKERS
    # Six idle workers blocked on the queue take one job each: every consumer container ran some.
    ran = {w["hostname"] for w in workers(stack) if int(w["done"]) > before.get(w["name"], 0)}
    assert ran == hosts


def test_the_dashboard_answers_with_basic_auth_only(stack):
    url = f"http://127.0.0.1:{stack.port}/0/data/queues.json"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=10)
    assert refused.value.code == 401
    token = b64encode(f"{DASH_USER}:{DASH_PASSWORD}".encode()).decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        assert "queue_one" in response.read().decode()


def test_the_broker_keeps_its_data_on_the_volume(stack):
    """Jobs parked on a queue nobody serves survive every container being removed and created again."""
    produce(stack, "--task", "sleep", "--param", "seconds=0", "--count", "5", "--queue", "parked")
    listing = stack.exec("broker", "ls", "/data/appendonlydir")
    assert listing.returncode == 0 and ".aof" in listing.stdout
    stack.remove(keep_volume=True)
    assert stack.containers() == []
    stack.compose("up", "-d", "--scale", f"consumer={CONSUMERS}")
    stack.wait_healthy("broker")
    wait_for_workers(stack, CONSUMERS * WORKERS)
    count = (
        "import os; from workbench.broker import client as c; print(c(os.environ['REDIS_URL']).llen('rq:queue:parked'))"
    )
    assert stack.exec("consumer", "python", "-c", count).stdout.strip() == "5"
    # The new consumers serve queue_one as before.
    rows = produce(stack, "--task", "count_primes", "--param", "limit=1000", "--wait")
    assert [(row["status"], row["result"]["count"]) for row in rows] == [("finished", 168)]

"""Building the workbench's image and running compose.yaml with podman, for tests/test_container.py.

Image registries are unreachable on these machines, so the base image is made from Debian
packages with mmdebstrap and imported (kept as a cache: BASE_IMAGE). The dependencies are
downloaded once by the base image's own Python (so its environment markers apply: Debian's 3.11.2
needs async-timeout, a newer 3.11 does not) into a cached wheelhouse, and the image is then
built offline from it. Everything a run creates (containers, pod, network, volume, the project
image) is removed at its end; only the base image and the wheelhouse stay, as caches.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .support import ROOT

BASE_IMAGE = "localhost/workbench-debian-base:bookworm"
DEBIAN_MIRRORS = (
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
)
#: Documentation, manuals and translations are never read in a container: left out of the base image.
DPKG_EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*")
CACHE = ROOT / ".data" / "container"
#: What a clone holds besides the project: never copied into the build context.
UNSHIPPED = (".git", ".venv", ".data", ".pytest_cache", ".ruff_cache", "__pycache__", "*.egg-info", "build",
             "bench", "tests", "wheels")  # fmt: skip
COMPOSE = [sys.executable, "-m", "podman_compose"]


def missing_tools() -> str | None:
    """Why the container test cannot run here, or None when it can."""
    for tool in ("podman", "mmdebstrap"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian: apt-get install -y podman buildah mmdebstrap uidmap " \
                   "slirp4netns fuse-overlayfs runc)"  # fmt: skip
    try:
        import podman_compose  # noqa: F401
    except ImportError:
        return "podman-compose is not installed in this venv (make test-container installs it)"
    if os.geteuid() != 0:
        return "building the base image with mmdebstrap and running rootful podman needs root"
    return None


def sh(*command: str, timeout: float = 600, check: bool = True, **options) -> subprocess.CompletedProcess:
    """Run a command, text in and out; a failure shows its output."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **options)
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        )
    return done


def image_id(name: str) -> str | None:
    done = sh("podman", "image", "inspect", "--format", "{{.Id}}", name, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def ensure_base_image() -> str:
    """The Debian base image (python3, its venv module, CA certificates), built once with mmdebstrap."""
    found = image_id(BASE_IMAGE)
    if found:
        return found
    with tempfile.TemporaryDirectory(prefix="workbench-base-") as tmp:
        tarball = Path(tmp) / "base.tar"
        excludes = [f"--dpkgopt=path-exclude={pattern}" for pattern in DPKG_EXCLUDES]
        sh("mmdebstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates", *excludes,
           "bookworm", str(tarball), *DEBIAN_MIRRORS, timeout=1200)  # fmt: skip
        sh("podman", "import", str(tarball), BASE_IMAGE, timeout=600)
    return image_id(BASE_IMAGE) or ""


def host_ca_bundle() -> str | None:
    """The CA bundle pip uses on this machine (it trusts the proxy's CA, when there is one)."""
    for candidate in (os.environ.get("PIP_CERT"), "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def ensure_wheelhouse(base_id: str) -> Path:
    """Every dependency as a wheel, downloaded by the base image's Python; cached per requirements and base."""
    requirements = (ROOT / "requirements.txt").read_bytes()
    key = hashlib.sha256(requirements + base_id.encode()).hexdigest()[:16]
    wheels = CACHE / f"wheels-{key}"
    if (wheels / ".complete").exists():
        return wheels
    shutil.rmtree(wheels, ignore_errors=True)
    wheels.mkdir(parents=True)
    shutil.copy(ROOT / "requirements.txt", wheels / "requirements.txt")
    mounts = ["-v", f"{wheels}:/wheels"]
    ca = host_ca_bundle()
    if ca:
        mounts += ["-v", f"{ca}:/etc/ssl/host-ca.crt:ro", "-e", "PIP_CERT=/etc/ssl/host-ca.crt"]
    sh("podman", "run", "--rm", *mounts, BASE_IMAGE, "sh", "-c",
       "python3 -m venv /tmp/pip && /tmp/pip/bin/pip download --quiet --disable-pip-version-check "
       "-r /wheels/requirements.txt -d /wheels", timeout=900)  # fmt: skip
    (wheels / ".complete").touch()
    return wheels


def build_image(tag: str) -> None:
    """Build the Dockerfile on the base image, offline: a context of the project, its wheel and the wheelhouse."""
    base_id = ensure_base_image()
    wheelhouse = ensure_wheelhouse(base_id)
    with tempfile.TemporaryDirectory(prefix="workbench-context-") as tmp:
        context = Path(tmp) / "context"
        shutil.copytree(ROOT, context, ignore=shutil.ignore_patterns(*UNSHIPPED))
        wheels = context / "wheels"
        shutil.copytree(wheelhouse, wheels, ignore=shutil.ignore_patterns(".complete", "requirements.txt"))
        project = Path(tmp) / "project"  # built outside the context, so its build/ and egg-info stay out
        shutil.copytree(context, project, ignore=shutil.ignore_patterns("wheels"))
        sh(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", str(project), "-w", str(wheels), timeout=600)
        sh("podman", "build", "--quiet", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "--tag", tag, str(context),
           timeout=1200)  # fmt: skip
    # The build stage's image is left untagged; it is ours by its label (never prune anyone else's).
    stages = sh("podman", "images", "--quiet", "--filter", "label=org.rq-workbench.stage=build").stdout.split()
    if stages:
        sh("podman", "rmi", "--force", *set(stages), check=False)


class Stack:
    """One compose project: `up`, commands inside its containers, and a complete `remove`."""

    def __init__(self, project: str, env: dict[str, str]) -> None:
        self.project, self.env = project, env

    def compose(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        return sh(*COMPOSE, "-p", self.project, "-f", str(ROOT / "compose.yaml"), *args, timeout=timeout,
                  env=self.env, cwd=ROOT, check=check)  # fmt: skip

    def name(self, service: str, index: int = 1) -> str:
        return f"{self.project}_{service}_{index}"

    def exec(self, service: str, *command: str, index: int = 1, timeout: float = 120) -> subprocess.CompletedProcess:
        return sh("podman", "exec", self.name(service, index), *command, timeout=timeout, check=False)

    def containers(self) -> list[dict]:
        done = sh(
            "podman", "ps", "-a", "--format", "json", "--filter", f"label=io.podman.compose.project={self.project}"
        )
        return json.loads(done.stdout or "[]")

    def wait_healthy(self, service: str = "broker", timeout: float = 90) -> None:
        """Run the healthcheck until it passes: without systemd, podman never runs it by itself."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sh("podman", "healthcheck", "run", self.name(service), check=False).returncode == 0:
                return
            time.sleep(1)
        logs = sh("podman", "logs", self.name(service), check=False)
        raise AssertionError(f"{service} never became healthy:\n{logs.stdout[-2000:]}{logs.stderr[-2000:]}")

    def remove(self, keep_volume: bool = False) -> None:
        """Every container of this project, found by its label (`down` in podman-compose 1.6 misses
        `--scale` replicas), warm-stopped first; then, unless kept, its pod, network and volume."""
        ids = [c["Id"] for c in self.containers()]
        if ids:
            sh("podman", "stop", "--time", "30", *ids, check=False, timeout=180)
            sh("podman", "rm", "--force", "--depend", *ids, check=False, timeout=120)  # dependents first
        if keep_volume:
            return
        sh("podman", "pod", "rm", "--force", f"pod_{self.project}", check=False)
        sh("podman", "volume", "rm", "--force", f"{self.project}_broker-data", check=False)
        sh("podman", "network", "rm", "--force", f"{self.project}_default", check=False)

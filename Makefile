# Every target installs what it needs into .venv first; nothing is assumed on the machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install test-deps demo stop test test-slow test-hosts test-ha test-container bench lint clean screenshots dashboard-scale

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.test-installed: requirements-test.txt requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-test.txt
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

test-deps: $(VENV)/.test-installed
	@bash .ci/ensure-chromium

demo: install
	$(BIN)/python -m workbench.console.demo start

stop:
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m workbench.console.demo stop; fi

test: lint
	$(BIN)/python -m pytest -n 2 --dist loadfile

test-slow: test-deps
	$(BIN)/python -m pytest -m slow

# Several hosts as network namespaces (needs root and iproute2; skipped with the reason otherwise).
test-hosts: test-deps
	$(BIN)/python -m pytest -m hosts

# High availability: a primary, a replica and three sentinels on hosts of their own, failovers under load
# (network namespaces as in test-hosts; iptables for the replication-loss case). About 5 minutes.
test-ha: test-deps
	$(BIN)/python -m pytest -m ha

# The image and compose.yaml, for real, with podman (Debian packages; see README "In a container").
# runc and the limits in container/containers.conf are what podman needs on machines like these.
CONTAINERS_CONF ?= $(CURDIR)/container/containers.conf
PODMAN_COMPOSE := podman-compose==1.6.0

test-container: test-deps
	@bash .ci/ensure-podman
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(PODMAN_COMPOSE)
	CONTAINERS_CONF=$(CONTAINERS_CONF) $(BIN)/python -m pytest -m container tests/test_container.py

bench: install
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	$(BIN)/python -m bench

# The README's dashboard pictures, from a real run (broker, 4 workers, a few minutes of jobs).
screenshots: test-deps
	$(BIN)/python -m tools.screenshots

# Every dashboard view timed against 100,000 finished and 10,000 failed jobs (printed, not asserted).
dashboard-scale: test-deps
	$(BIN)/python -m tools.dashboard_scale

# ruff, then mypy over the files pyproject.toml's [tool.mypy] names (zero errors).
lint: test-deps
	$(BIN)/python -m ruff check .
	$(BIN)/python -m mypy

clean: stop
	rm -rf $(VENV) .data .pytest_cache

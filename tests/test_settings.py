"""WORKBENCH_* settings: one reader; a malformed value is refused with a sentence naming it, never ignored."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from workbench import defaults, fencing, settings
from workbench.errors import UsageError

from .test_bad_input import assert_one_sentence

README = Path(__file__).resolve().parent.parent / "README.md"
NAMES = sorted(settings.SETTINGS)
MALFORMED = ["soon", "0", "-1", "nan", "inf", "1e9", "2 s"]


@pytest.mark.parametrize("name", NAMES)
def test_unset_or_empty_is_the_default(name):
    setting = settings.SETTINGS[name]
    assert settings.read(name, {}) == setting.default
    assert settings.read(name, {name: "  "}) == setting.default


@pytest.mark.parametrize("name", NAMES)
def test_a_value_in_range_is_taken(name):
    assert settings.read(name, {name: "2"}) == 2


@pytest.mark.parametrize("raw", MALFORMED)
@pytest.mark.parametrize("name", NAMES)
def test_a_malformed_value_is_refused_naming_the_variable_and_what_it_takes(name, raw):
    with pytest.raises(UsageError) as caught:
        settings.read(name, {name: raw})
    message = str(caught.value)
    assert message == f"{name} must be {settings.SETTINGS[name].accepts}, not {raw!r}."
    assert "\n" not in message


def test_whole_settings_refuse_a_fraction():
    with pytest.raises(UsageError, match="WORKBENCH_SCHEDULER_LEASE_S must be a whole number"):
        settings.read(defaults.ENV_SCHEDULER_LEASE, {defaults.ENV_SCHEDULER_LEASE: "1.5"})


def test_the_fencing_timings_read_through_it():
    env = {defaults.ENV_LIVENESS_TTL: "5", defaults.ENV_HEARTBEAT_INTERVAL: "0.5", defaults.ENV_JANITOR_INTERVAL: "1"}
    numbers = fencing.timings(env)
    assert (numbers.ttl, numbers.interval, numbers.janitor) == (5, 0.5, 1)
    with pytest.raises(UsageError, match=defaults.ENV_JANITOR_INTERVAL):
        fencing.timings({defaults.ENV_JANITOR_INTERVAL: "often"})


def test_check_names_the_first_malformed_setting():
    settings.check({})
    with pytest.raises(UsageError, match=defaults.ENV_CONFIRM_TIMEOUT):
        settings.check({defaults.ENV_CONFIRM_TIMEOUT: "five"})


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("consumer_main.py", ("--workers", "1", "--queue", "q")),
        ("producer_main.py", ("--task", "sleep", "--param", "seconds=1")),
    ],
)
@pytest.mark.parametrize("name", [defaults.ENV_HEARTBEAT_INTERVAL, defaults.ENV_CONFIRM_TIMEOUT])
def test_the_consoles_refuse_a_malformed_setting_before_starting(cli, conn, script, args, name):
    result = cli(script, *args, **{name: "fast"})
    assert_one_sentence(result, 2)
    assert result.stderr.strip() == f"error: {name} must be {settings.SETTINGS[name].accepts}, not 'fast'."
    assert conn.dbsize() == 0  # nothing enqueued, no worker registered


def test_the_readme_documents_every_setting():
    rows = {m.group(1) for m in re.finditer(r"^\| `(WORKBENCH_[A-Z_]+)` \|", README.read_text(), re.M)}
    assert set(NAMES) <= rows

"""The workbench's numeric settings from the environment (WORKBENCH_*): one reader, one refusal.

Flag > environment > default: a console flag, where there is one, wins (the console passes its value
and never asks here); then the variable; then the default in `workbench.defaults`. An unset or empty
variable means the default. A variable set to anything else than what it accepts is a usage error
naming it (exit 2 in the consoles, which check every setting before they start) — never silently
the default, which would leave a typo in force unnoticed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from . import defaults, validators
from .errors import UsageError


@dataclass(frozen=True)
class Setting:
    """One numeric WORKBENCH_* variable: its default, its bounds, and what it sets (for the README)."""

    env_name: str
    #: The name of its default in `workbench.defaults`, read when the setting is (tests patch defaults).
    default_name: str
    minimum: float
    maximum: float
    #: Whole numbers only (a port, a lease in whole seconds).
    whole: bool
    accepts: str
    sets: str

    @property
    def default(self) -> float:
        value = getattr(defaults, self.default_name)
        assert isinstance(value, int | float)
        return value

    def read(self, env: Mapping[str, str] = os.environ) -> float:
        """The value in force in `env`: the variable's, or the default when it is unset or empty."""
        raw = env.get(self.env_name, "").strip()
        if not raw:
            return self.default
        try:
            if self.whole:
                return validators.whole_number(raw, self.env_name, int(self.minimum), int(self.maximum))
            return validators.real_number(raw, self.env_name, self.minimum, self.maximum)
        except UsageError:
            raise UsageError(f"{self.env_name} must be {self.accepts}, not {raw!r}.") from None


def _seconds(env_name: str, default_name: str, sets: str) -> Setting:
    low, high = defaults.SETTING_MIN_S, defaults.SETTING_MAX_S
    accepts = f"a number of seconds from {low:g} to {high:,}"
    return Setting(env_name, default_name, low, high, False, accepts, sets)


#: Every numeric setting, by variable name.
SETTINGS: dict[str, Setting] = {
    s.env_name: s
    for s in (
        Setting(
            defaults.ENV_BROKER_PORT,
            "LOCAL_BROKER_PORT",
            1,
            65535,
            True,
            "a port number from 1 to 65535",
            "the port of the embedded broker the consoles start when no REDIS_URL is given",
        ),
        _seconds(
            defaults.ENV_CONFIRM_TIMEOUT,
            "CONFIRM_TIMEOUT_S",
            "how long a producer waits for the broker to confirm a batch durable",
        ),
        _seconds(
            defaults.ENV_CHECKPOINT_INTERVAL,
            "CHECKPOINT_INTERVAL_S",
            "at most one checkpoint write per job this often",
        ),
        _seconds(defaults.ENV_HEARTBEAT_INTERVAL, "HEARTBEAT_INTERVAL_S", "how often a worker beats"),
        _seconds(
            defaults.ENV_LIVENESS_TTL,
            "LIVENESS_TTL_S",
            "how long a worker's liveness key outlives its last beat (the lease and stop grace follow from it)",
        ),
        _seconds(
            defaults.ENV_JANITOR_INTERVAL,
            "JANITOR_INTERVAL_S",
            "how often the janitor looks for dead workers",
        ),
        _seconds(
            defaults.ENV_TIMEOUT_GRACE,
            "TIMEOUT_GRACE_S",
            "how far past its timeout a job's worker is killed as stuck",
        ),
        Setting(
            defaults.ENV_SCHEDULER_LEASE,
            "SCHEDULER_LEASE_S",
            1,
            defaults.SETTING_MAX_S,
            True,
            f"a whole number of seconds from 1 to {defaults.SETTING_MAX_S:,}",
            "the periodic-schedule lease: another consumer takes over within it",
        ),
    )
}


def read(env_name: str, env: Mapping[str, str] = os.environ) -> float:
    """The value in force of the setting `env_name` (one of SETTINGS); UsageError when it is malformed."""
    return SETTINGS[env_name].read(env)


def check(env: Mapping[str, str] = os.environ) -> None:
    """Refuse the first malformed setting in `env` (UsageError), before anything starts."""
    for setting in SETTINGS.values():
        setting.read(env)

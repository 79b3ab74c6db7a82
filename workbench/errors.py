"""The workbench's error tree and exit codes.

Every error carries one sentence a person can act on; the console layer prints it and exits
with the error's code. Nothing below the console layer prints or exits.
"""

from __future__ import annotations

#: Named exit codes, shared by every entry point.
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
#: Ctrl-C, as shells report a process ended by SIGINT (128 + 2).
EXIT_INTERRUPTED = 130


class WorkbenchError(Exception):
    """Raised when an operation cannot be completed; the message is one sentence for a person."""

    exit_code = EXIT_FAILURE


class UsageError(WorkbenchError):
    """Raised when a flag, parameter or answer is invalid, or a needed value is missing."""

    exit_code = EXIT_USAGE


class CatalogError(UsageError):
    """Raised when the task catalog cannot be loaded: a task module fails to import or declares a task wrongly."""


class BrokerUnavailable(WorkbenchError):
    """Raised when the broker cannot be reached, started or used."""


class NotConfirmed(WorkbenchError):
    """Raised when the broker took a write (a batch, a schedule) but did not confirm it durable in time."""


class NotFound(WorkbenchError):
    """Raised when a named worker, queue or job does not exist."""


class JobsFailed(WorkbenchError):
    """Raised when waited-for jobs ended failed or stopped."""


class CheckpointError(WorkbenchError):
    """Raised inside a task when its checkpoint state cannot be saved: not JSON, or over the size limit."""


class NotCatalogTask(Exception):
    """Raised inside a worker when a job names a function outside the task catalog."""

"""A module outside the task catalog whose every effect leaves a file: proof of whether it ran.

Importing it leaves `imported`, calling `touch` leaves the name given, and `callback` (shaped
like an RQ success callback) leaves `callback`, all in the folder named by OUTSIDER_DIR.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The environment variable naming the folder the marker files go to.
MARKER_DIR_ENV = "OUTSIDER_DIR"


def _touch(name: str) -> None:
    folder = os.environ.get(MARKER_DIR_ENV)
    if folder:
        Path(folder, name).touch()


_touch("imported")


def touch(name: str = "ran") -> str:
    _touch(name)
    return name


def callback(job, connection, result, *args, **kwargs) -> None:
    _touch("callback")

"""The bench's own catalog module (`WORKBENCH_TASKS=bench.tasks` for its consumers): a baseline twin.

`sha256_chain_unsaved` runs the very same `sha256_chain` function, but as a task that does not opt in
to checkpoints: its `checkpoint.save` calls do nothing. The same job with and without checkpoints.
"""

from __future__ import annotations

from task_def.maths import sha256_chain
from workbench.catalog import INT, STR, Param, task


@task(
    params=[
        Param("rounds", INT, 1_000_000, "how many times to hash", 1, 100_000_000),
        Param("data", STR, "workbench", "the text hashed first", maximum=1000),
    ],
    timeout=900,
    extra={"internal": True},
)
def sha256_chain_unsaved(rounds: int = 1_000_000, data: str = "workbench") -> dict:
    """sha256_chain without checkpoints: the baseline the checkpointing cost is measured against."""
    return sha256_chain(rounds=rounds, data=data)

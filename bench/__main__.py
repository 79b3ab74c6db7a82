"""`python -m bench [--smoke] [--rounds N] [--only NAME]... [--out PATH] [--no-readme]`.

A full run writes bench/RESULTS.md and the README's benchmark section; `--smoke` runs every row at
tiny sizes (for the test suite) and writes only where `--out` says.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from .report import summary, table, write
from .rows import EXPERIMENTS, FULL, SMOKE
from .runner import run
from .sides import ROOT, BenchError


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one round: checks the harness, not speed")
    parser.add_argument("--rounds", type=int, help="rounds per row (default 5, smoke 1; fewer than 3 are not written)")
    parser.add_argument("--only", action="append", choices=[name for name, _ in EXPERIMENTS], help="run only these")
    parser.add_argument("--out", type=Path, help="where to write the results (default bench/RESULTS.md; smoke: none)")
    parser.add_argument("--no-readme", action="store_true", help="leave the README's benchmark section alone")
    parser.add_argument("--chart", type=Path, help="where to draw the chart (default docs/bench.png; smoke: none)")
    return parser.parse_args(argv)


#: Fewer rounds than this are a trial, never written: three give a median and a spread worth publishing.
MIN_PUBLISHED_ROUNDS = 3


def main(argv: list[str]) -> int:
    args = parse(argv)
    sizes = SMOKE if args.smoke else FULL
    if args.rounds is not None:
        if args.rounds < 1:
            print("error: --rounds must be at least 1.", file=sys.stderr)
            return 2
        sizes = replace(sizes, rounds=args.rounds)
    partial = args.smoke or bool(args.only) or sizes.rounds < MIN_PUBLISHED_ROUNDS
    try:
        result = run(sizes, set(args.only or ()), progress=lambda line: print(line, file=sys.stderr, flush=True))
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted; nothing written.", file=sys.stderr)
        return 1
    print(table(result))
    print(summary(result))
    out = args.out or (None if partial else ROOT / "bench" / "RESULTS.md")
    if out is not None:
        readme = None if (partial or args.no_readme) else ROOT / "README.md"
        chart = args.chart or (None if partial else ROOT / "docs" / "bench.png")
        skipped = write(result, out, readme, chart)
        print(f"Wrote {out}" + (" and the README's benchmark section" if readme else "") + ".", file=sys.stderr)
        if chart is not None:
            print(skipped or f"Drew {chart}.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

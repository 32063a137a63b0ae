"""``python -m bench``: run the scenarios and write their figures to docs/benchmarks.md."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from bench import SCENARIOS
from bench.harness import (
    ROOT,
    BenchError,
    Options,
    cpu_busy,
    pg_version,
    wait_for_quiet,
    workspace,
)
from bench.report import detect_machine, render_section, update_document

DEFAULT_OUTPUT = ROOT / "docs" / "benchmarks.md"
QUIET_PERCENT = 15.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--scenario",
        action="append",
        choices=sorted(SCENARIOS),
        help="run only this scenario (repeatable; default: all)",
    )
    parser.add_argument("--quick", action="store_true", help="shorter runs, smaller data")
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="sample the Tidings server with py-spy while measured; top frames go to DIR",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="before each scenario, wait up to this long for other processes to go idle",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    databases = ("sqlite", "postgresql") if args.database == "both" else (args.database,)
    pg = pg_version() if "postgresql" in databases else None
    if "postgresql" in databases and pg is None:
        print("bench: PostgreSQL is not reachable at 127.0.0.1:5432", file=sys.stderr)
        return 2
    opts = Options(quick=args.quick, databases=databases, profile_dir=args.profile, keep=args.keep)
    machine = detect_machine(pg)
    names = args.scenario or list(SCENARIOS)
    order = list(SCENARIOS)
    sections: dict[str, str] = {}
    failed = 0
    started = time.monotonic()
    with workspace(args.keep) as ws:
        for name in [n for n in order if n in names]:
            print(f"bench: {name} ...", flush=True)
            busy = asyncio.run(wait_for_quiet(QUIET_PERCENT, args.quiet_wait))
            t0 = time.monotonic()
            try:
                result = asyncio.run(SCENARIOS[name].run(ws, opts))
            except BenchError as exc:
                print(f"bench: {name} failed: {exc}", file=sys.stderr)
                failed += 1
                continue
            result.command = _command(args, name)
            after = asyncio.run(cpu_busy())
            result.notes.append(
                f"CPU busy while the benchmark was idle: {busy:.0f}% just before the scenario, "
                f"{after:.0f}% just after (other processes on this machine)."
            )
            if args.profile:
                result.notes.append(f"Profiled with py-spy ({args.profile}): figures are lower.")
            sections[name] = render_section(result, machine)
            print(sections[name], flush=True)
            print(f"bench: {name} took {time.monotonic() - t0:.0f}s", flush=True)
            # write after every scenario, so a later failure keeps the earlier figures
            existing = args.output.read_text() if args.output.exists() else None
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(update_document(existing, sections, order))
        if args.keep:
            print(f"bench: kept {ws.root}")
    print(f"bench: done in {time.monotonic() - started:.0f}s; wrote {args.output}")
    return 1 if failed else 0


def _command(args: argparse.Namespace, name: str) -> str:
    parts = ["python -m bench", f"--scenario {name}", f"--database {args.database}"]
    if args.quick:
        parts.append("--quick")
    return " ".join(parts)


if __name__ == "__main__":
    sys.exit(main())

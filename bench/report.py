"""Figures and the markdown they become in docs/benchmarks.md.

Each scenario owns a block between ``<!-- bench:NAME:begin -->`` and
``<!-- bench:NAME:end -->``; a run rewrites only the blocks of the scenarios it ran and
leaves everything else in the file (the hand-written profiles and findings) alone.
"""

from __future__ import annotations

import os
import platform
import re
import sqlite3
import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

Better = Literal["higher", "lower"]


@dataclass(frozen=True)
class Machine:
    cores: int
    cpu: str
    memory_gib: float
    python: str
    sqlite: str
    postgresql: str | None = None

    def describe(self) -> str:
        parts = [
            f"{self.cores} cores (`nproc`)",
            f"CPU `{self.cpu}`",
            f"{self.memory_gib:.0f} GiB RAM",
            f"Python {self.python}",
            f"SQLite {self.sqlite}",
        ]
        if self.postgresql:
            parts.append(f"PostgreSQL {self.postgresql}")
        return ", ".join(parts)


def detect_machine(postgresql: str | None = None) -> Machine:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = 0.0
    try:
        with open("/proc/meminfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("MemTotal:"):
                    memory = int(line.split()[1]) / 1024 / 1024
                    break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return Machine(
        cores=cores or 1,
        cpu=cpu,
        memory_gib=memory,
        python=platform.python_version(),
        sqlite=sqlite3.sqlite_version,
        postgresql=postgresql,
    )


@dataclass
class Figure:
    """One measured quantity, for Tidings and (usually) its baseline from the same run.

    ``ratio`` is oriented so that higher is better and 1.0 is parity: Tidings / baseline
    for rates, baseline / Tidings for times and latencies.
    """

    database: str
    measure: str
    unit: str
    better: Better
    tidings: float
    baseline: float | None = None
    aim_ratio: float | None = None
    aim_value: float | None = None
    command: str = ""
    samples: list[float] = field(default_factory=list)
    baseline_samples: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.tidings <= 0 or self.baseline <= 0:
            return None
        if self.better == "higher":
            return self.tidings / self.baseline
        return self.baseline / self.tidings

    @property
    def met(self) -> bool | None:
        checks: list[bool] = []
        ratio = self.ratio
        if self.aim_ratio is not None:
            checks.append(ratio is not None and ratio >= self.aim_ratio)
        if self.aim_value is not None:
            if self.better == "higher":
                checks.append(self.tidings >= self.aim_value)
            else:
                checks.append(self.tidings < self.aim_value)
        return all(checks) if checks else None

    def aim_text(self) -> str:
        parts = []
        if self.aim_ratio is not None:
            parts.append(f">= {self.aim_ratio:g}x")
        if self.aim_value is not None:
            sign = ">=" if self.better == "higher" else "<"
            parts.append(f"{sign} {fmt_number(self.aim_value)} {self.unit}")
        return " and ".join(parts) or "-"


def rate_figure(
    database: str,
    measure: str,
    unit: str,
    count: int,
    ours: list[float],
    base: list[float],
    command: str,
    *,
    aim_ratio: float | None = None,
) -> Figure:
    """A throughput figure (``count`` per second) derived from timed runs of both sides."""
    ours_rate = [count / s for s in ours]
    base_rate = [count / s for s in base]
    return Figure(
        database,
        measure,
        unit,
        "higher",
        median(ours_rate),
        median(base_rate),
        aim_ratio=aim_ratio,
        command=command,
        samples=ours_rate,
        baseline_samples=base_rate,
    )


@dataclass
class ScenarioResult:
    name: str
    title: str
    command: str
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    measured_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (p50 of [1, 2, 3, 4] is 2)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.4999)))
    return ordered[rank - 1]


def fmt_number(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _cell(value: float | None, unit: str, samples: list[float]) -> str:
    if value is None:
        return "-"
    text = f"{fmt_number(value)} {unit}"
    if len(samples) > 1:
        text += f" (n={len(samples)}, {fmt_number(min(samples))}-{fmt_number(max(samples))})"
    return text


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def render_section(result: ScenarioResult, machine: Machine) -> str:
    """The markdown block of one scenario (without its markers)."""
    when = result.measured_at.strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## {result.name}: {result.title}",
        "",
        f"Measured {when} with `{result.command}` on {machine.describe()}. "
        f"The load generator and the server share these {machine.cores} cores.",
        "",
        "| database | measure | Tidings | baseline | ratio | aim | met | command |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for fig in result.figures:
        ratio = fig.ratio
        met = {True: "yes", False: "**no**", None: "-"}[fig.met]
        lines.append(
            "| "
            + " | ".join(
                [
                    fig.database,
                    fig.measure,
                    _cell(fig.tidings, fig.unit, fig.samples),
                    _cell(fig.baseline, fig.unit, fig.baseline_samples),
                    f"{ratio:.2f}x" if ratio is not None else "-",
                    fig.aim_text(),
                    met,
                    _escape(fig.command),
                ]
            )
            + " |"
        )
    if result.notes:
        lines.append("")
        lines.extend(f"- {note}" for note in result.notes)
    return "\n".join(lines)


HEADER = """# Benchmarks

Produced by `make bench` (`python -m bench`; pass options as
`make bench ARGS="--quick --scenario ingest"`: `--scenario NAME` (repeatable), `--quick`,
`--database sqlite|postgresql|both`, `--profile DIR`, `--quiet-wait SECONDS`,
`--output FILE`, `--keep`). The full run takes about 10 minutes. The runner starts
everything itself on 127.0.0.1: `tidings serve` processes (each with its own
`TIDINGS_DATA_DIR` in a temporary directory, `TIDINGS_ENV=development`,
`TIDINGS_LOG_LEVEL=WARNING`), a database of its own on PostgreSQL at 127.0.0.1:5432
(created, migrated with `tidings migrate`, dropped; `BENCH_PG_DSN` names another admin
DSN), the bare baseline app (`bench/bare_app.py`: the statements Tidings runs for a send,
with the raw driver; `BENCH_BARE_STATEMENTS=inserts` runs only the send's three inserts)
and an aiosmtpd sink process. It needs
`wrk` (`make bench` installs the Debian package when it is missing).
`BENCH_TIDINGS_SERVE="python my_entry_point.py"` starts that instead of
`.venv/bin/tidings` for `serve`, to measure a patched build. The live and Celery
scenarios (`live_latency`, `live_fanout`, `celery_drain`) also need Redis at
127.0.0.1:6379: db 0 carries the live fan-out (pub/sub only), db 12 is the bench's own
broker and is emptied before and after; they start `tidings worker` processes, a minimal
websockets server (`bench/ws_baseline.py`) and no-op Celery workers (`bench/noop_app.py`).
The `push` and `sms` scenarios (about 5 minutes of the full run together) start the
push-service and Twilio stand-ins of `tests/fixtures` in processes of their own
(`bench/standins.py`).

Every Tidings figure sits next to a baseline measured in the same run. The ratio is
oriented so that higher is better and 1.00x is parity: Tidings / baseline for rates,
baseline / Tidings for times and latencies. Figures with several runs show the median
and, in brackets, the number of runs and their range. The generated blocks below are
rewritten by each run; the sections after them are written by hand.
"""

_MARKER = re.compile(r"<!-- bench:([a-z_]+):(begin|end) -->")


def _block(name: str, body: str) -> str:
    return f"<!-- bench:{name}:begin -->\n{body.rstrip()}\n<!-- bench:{name}:end -->"


def update_document(existing: str | None, sections: dict[str, str], order: list[str]) -> str:
    """Replace (or add) the generated blocks ``sections``; keep all other text.

    A new document gets the header, a placeholder block for every scenario in ``order``
    and an empty "Profiles and findings" section.
    """
    if not existing:
        placeholders = [_block(name, f"## {name}\n\nNot measured yet.") for name in order]
        existing = (
            HEADER
            + "\n"
            + "\n\n".join(placeholders)
            + "\n\n## Profiles and findings\n\nNot written yet.\n"
        )
    text = existing
    for name in order:
        if name not in sections:
            continue
        block = _block(name, sections[name])
        pattern = re.compile(rf"<!-- bench:{name}:begin -->.*?<!-- bench:{name}:end -->", re.DOTALL)
        if pattern.search(text):
            text = pattern.sub(lambda _match, block=block: block, text, count=1)
        else:
            text = _insert_block(text, name, block, order)
    return text if text.endswith("\n") else text + "\n"


def _insert_block(text: str, name: str, block: str, order: list[str]) -> str:
    """Put a new block after the last generated block of a scenario that comes before it."""
    ends = {m.group(1): m.end() for m in _MARKER.finditer(text) if m.group(2) == "end"}
    earlier = [n for n in order[: order.index(name)] if n in ends]
    if earlier:
        at = ends[earlier[-1]]
        return text[:at] + "\n\n" + block + text[at:]
    return text.rstrip("\n") + "\n\n" + block + "\n"

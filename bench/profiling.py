"""Optional py-spy sampling of a server process while it is measured (``--profile DIR``).

py-spy writes collapsed stacks (``--format raw``); ``top_frames`` turns them into the
functions with the most samples on top of the stack (self) and anywhere in it (total).
Profiled figures are lower than unprofiled ones: write them to another ``--output``.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
_LINENO = re.compile(r":\d+\)$")


def _frame(raw: str) -> str:
    # "handle (sqlalchemy/orm/session.py:123)" -> "handle (sqlalchemy/orm/session.py)"
    name = _LINENO.sub(")", raw.strip())
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in name:
            head, _, tail = name.partition("(")
            tail = tail.split(marker, 1)[-1]
            name = f"{head}({tail}"
    return name


def _tally(stacks: list[tuple[list[str], int]], limit: int) -> list[str]:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = sum(count for _, count in stacks)
    for frames, count in stacks:
        own[frames[-1]] += count
        for name in set(frames):
            total[name] += count
    if not samples:
        return ["no samples"]
    out = ["self %  function (file)"]
    out += [f"{100 * n / samples:6.1f}  {name}" for name, n in own.most_common(limit)]
    out += ["", "total %  function (file)"]
    out += [f"{100 * n / samples:6.1f}  {name}" for name, n in total.most_common(limit)]
    ours = [(name, n) for name, n in total.most_common() if "(tidings/" in name]
    out += ["", "total %  Tidings' own functions"]
    out += [f"{100 * n / samples:6.1f}  {name}" for name, n in ours[:limit]]
    return out


def top_frames(collapsed: str, limit: int = 25, seconds: float = 0.0, rate: int = 0) -> str:
    """A text table of the hottest frames in py-spy's collapsed output.

    With ``--threads`` output the event loop (MainThread) is summarised apart from the
    other threads (aiosqlite's connection threads, for instance); with ``seconds`` and
    ``rate`` it also says how busy the event loop was.
    """
    by_thread: dict[str, list[tuple[list[str], int]]] = {"MainThread": [], "other threads": []}
    for line in collapsed.splitlines():
        match = _LINE.match(line.strip())
        if not match:
            continue
        raw = [f for f in match.group("stack").split(";") if f]
        group = "MainThread"
        if raw and raw[0].startswith("thread ("):
            group = "MainThread" if raw[0].endswith("MainThread") else "other threads"
            raw = raw[1:]
        if raw:
            by_thread[group].append(([_frame(f) for f in raw], int(match.group("count"))))
    out: list[str] = []
    for group, stacks in by_thread.items():
        samples = sum(count for _, count in stacks)
        if not samples and group != "MainThread":
            continue
        head = f"== {group}: {samples} samples"
        if group == "MainThread" and seconds and rate:
            head += f" (on CPU {100 * samples / (seconds * rate):.0f}% of the time)"
        out += [head, *_tally(stacks, limit), ""]
    return "\n".join(out)


class Profiler:
    """Samples one process with py-spy for a bounded time; a no-op without a directory."""

    def __init__(self, directory: Path | None, *, native: bool = False) -> None:
        self.directory = directory
        self.native = native
        self._py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")

    async def record(self, label: str, pid: int, seconds: float) -> asyncio.Task[None] | None:
        if self.directory is None:
            return None
        self.directory.mkdir(parents=True, exist_ok=True)
        raw = self.directory / f"{label}.collapsed"
        mode = ["--native", "--rate", "50"] if self.native else ["--nonblocking", "--rate", "100"]
        argv = [
            self._py_spy,
            "record",
            *mode,
            "--threads",
            "--duration",
            str(max(1, round(seconds))),
            "--format",
            "raw",
            "--output",
            str(raw),
            "--pid",
            str(pid),
        ]

        async def run() -> None:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            try:
                _, err = await asyncio.wait_for(proc.communicate(), seconds + 60)
            except TimeoutError:
                proc.kill()
                await proc.wait()
                return
            if raw.exists():
                summary = top_frames(
                    raw.read_text(errors="replace"),
                    seconds=max(1, round(seconds)),
                    rate=50 if self.native else 100,
                )
                (self.directory / f"{label}.top.txt").write_text(summary)  # type: ignore[operator]
            else:
                print(f"bench: py-spy failed for {label}: {err.decode()[-500:]}", file=sys.stderr)

        return asyncio.create_task(run())

    @staticmethod
    async def finish(task: asyncio.Task[None] | None) -> None:
        if task is not None:
            await task

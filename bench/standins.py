"""The push-service and Twilio stand-ins (tests/fixtures), each in a process of its own.

Both stand-ins serve from a thread of the process that starts them. Started in the
bench process, their CPU (VAPID verification and payload decryption for push, form
checks for Twilio) would be spent next to the baseline's client loop and distort it, so
``StandInProcess`` starts one in a child process (``spawn``) and talks to it through a
pipe: a command and an argument in, one answer out, every wait bounded. The child exits
on ``stop``, and also when the pipe breaks (the bench process died), so nothing is
left behind; ``stop`` terminates it if it does not exit in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from bench.harness import ROOT, BenchError

# A stand-in answers within milliseconds; creating 2,000 push subscriptions (a P-256
# key pair each) takes about a second, on a busy machine a few.
CALL_TIMEOUT = 60.0
IDLE_LIMIT = 4 * 3600.0  # bounded: the runner stops the stand-ins long before


def _push_service(_arg: Any) -> tuple[Any, str, dict[str, Callable[[Any], Any]]]:
    from tests.fixtures.push_service import PushService

    service = PushService(keep=False)
    service.start()

    def subscribe(count: int) -> list[tuple[str, str, str]]:
        subs = [service.subscribe() for _ in range(count)]
        return [(s.endpoint, s.p256dh, s.auth) for s in subs]

    def counts(_: Any) -> tuple[int, int]:
        return service.delivered_count, len(service.rejections)

    return service, service.origin, {"subscribe": subscribe, "counts": counts}


def _twilio_service(accounts: dict[str, str]) -> tuple[Any, str, dict[str, Callable[[Any], Any]]]:
    from tests.fixtures.twilio_service import TwilioService

    # served on uvloop, like the push stand-in (uvicorn's Server.run() picks it), so
    # both stand-ins cost the same per request
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    service = TwilioService(accounts, port=0)
    service.start()

    def counts(_: Any) -> tuple[int, int]:
        accepted = len(service.messages)
        refused = sum(1 for request in service.requests if request.status != 201)
        return accepted, refused

    def clear(_: Any) -> None:
        service.clear()

    return service, service.base_url, {"counts": counts, "clear": clear}


_KINDS: dict[str, Callable[[Any], tuple[Any, str, dict[str, Callable[[Any], Any]]]]] = {
    "push": _push_service,
    "twilio": _twilio_service,
}


def _serve(kind: str, arg: Any, conn: Connection) -> None:
    """The child: start the stand-in, answer commands until ``stop`` or a broken pipe."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # tests.fixtures is imported from the work tree
    try:
        service, address, commands = _KINDS[kind](arg)
    except Exception as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    try:
        conn.send(("ready", address))
        while conn.poll(IDLE_LIMIT):
            try:
                command, value = conn.recv()
            except EOFError:
                break  # the bench process is gone
            if command == "stop":
                conn.send(("ok", None))
                break
            try:
                conn.send(("ok", commands[command](value)))
            except Exception as exc:
                conn.send(("error", f"{command}: {type(exc).__name__}: {exc}"))
    finally:
        service.stop()


class StandInProcess:
    """``push`` (``PushService(keep=False)``) or ``twilio`` (``TwilioService(accounts)``)
    in a child process; ``address`` is its origin or base URL once started."""

    def __init__(self, kind: str, arg: Any = None) -> None:
        if kind not in _KINDS:
            raise BenchError(f"unknown stand-in {kind!r}")
        context = multiprocessing.get_context("spawn")
        self.kind = kind
        self.address = ""
        self._stopped = False
        self._conn, child = context.Pipe()
        self._proc = context.Process(
            target=_serve, args=(kind, arg, child), name=f"bench-{kind}-stand-in", daemon=True
        )

    @property
    def pid(self) -> int:
        return int(self._proc.pid or 0)

    def start(self, timeout: float = 30.0) -> StandInProcess:
        self._proc.start()
        try:
            self.address = str(self._answer("start", timeout))
        except BenchError:
            self.stop()
            raise
        return self

    def call(self, command: str, value: Any = None, timeout: float = CALL_TIMEOUT) -> Any:
        try:
            self._conn.send((command, value))
        except (BrokenPipeError, OSError) as exc:
            raise BenchError(f"the {self.kind} stand-in is gone: {exc}") from None
        return self._answer(command, timeout)

    def _answer(self, command: str, timeout: float) -> Any:
        try:
            if not self._conn.poll(timeout):
                raise BenchError(f"the {self.kind} stand-in did not answer {command!r} in time")
            status, value = self._conn.recv()
        except (EOFError, OSError) as exc:
            code = self._proc.exitcode
            raise BenchError(f"the {self.kind} stand-in exited (code {code}): {exc!r}") from None
        if status == "error":
            raise BenchError(f"the {self.kind} stand-in failed: {value}")
        return value

    def cpu_seconds(self) -> float:
        """User + system CPU time the stand-in process has used so far (Linux)."""
        return process_cpu_seconds(self.pid)

    def stop(self) -> None:
        if self._stopped or self._proc.pid is None:
            return
        self._stopped = True
        if self._proc.is_alive():
            try:
                self._conn.send(("stop", None))
                if self._conn.poll(15):
                    self._conn.recv()
            except (EOFError, OSError):
                pass
            self._proc.join(10)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)
        self._conn.close()


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` from /proc (0.0 where that cannot be read)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


async def wait_for_count(
    stand_in: StandInProcess,
    target: int,
    *,
    refused_before: int,
    timeout: float,
    stall: float = 30.0,
    interval: float = 0.01,
) -> None:
    """Poll the stand-in's ``counts`` (accepted, refused) until ``accepted >= target``.

    Fails at once when it refuses a request (a malformed message would otherwise only
    show as a timeout), when nothing arrives for ``stall`` seconds, or after ``timeout``.
    """
    started = last_change = time.monotonic()
    last = -1
    while True:
        accepted, refused = stand_in.call("counts")
        if refused > refused_before:
            raise BenchError(
                f"the {stand_in.kind} stand-in refused {refused - refused_before} requests "
                f"({accepted} of {target} accepted)"
            )
        if accepted >= target:
            return
        now = time.monotonic()
        if accepted != last:
            last, last_change = accepted, now
        if now - last_change > stall or now - started > timeout:
            raise BenchError(
                f"the {stand_in.kind} stand-in has {accepted} of {target} messages after "
                f"{now - started:.0f}s ({now - last_change:.0f}s without progress)"
            )
        await asyncio.sleep(interval)


class CpuMeter:
    """CPU seconds used per measured run by the server, the stand-in and the bench
    process (where the baselines run), from /proc and ``time.process_time``."""

    def __init__(self, server_pid: int, stand_in: StandInProcess) -> None:
        self._server_pid = server_pid
        self._stand_in = stand_in
        self.runs: dict[str, list[tuple[float, float, float]]] = {"tidings": [], "baseline": []}
        self._started: tuple[float, float, float] | None = None

    def _now(self) -> tuple[float, float, float]:
        return (
            process_cpu_seconds(self._server_pid),
            self._stand_in.cpu_seconds(),
            time.process_time(),
        )

    def start(self) -> None:
        self._started = self._now()

    def stop(self, side: str) -> None:
        assert self._started is not None
        server, stand_in, bench = (b - a for a, b in zip(self._started, self._now(), strict=True))
        self.runs[side].append((server, stand_in, bench))
        self._started = None

    def per_thousand(self, side: str, index: int, n: int) -> float:
        values = [run[index] * 1000 / n for run in self.runs[side]]
        return statistics.median(values) if values else 0.0

    def describe(self, n: int, client: str) -> str:
        def cell(side: str, index: int) -> str:
            return f"{self.per_thousand(side, index, n):.2f}"

        return (
            "CPU seconds per 1,000 messages (median of the runs): Tidings server "
            f"{cell('tidings', 0)} + stand-in {cell('tidings', 1)}; {client} (bench process) "
            f"{cell('baseline', 2)} + stand-in {cell('baseline', 1)}"
        )

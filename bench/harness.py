"""Processes and databases the scenarios need, started and stopped by the runner itself.

Everything binds 127.0.0.1. Every wait is bounded in count and in time.
Environment: ``BENCH_PG_DSN`` (admin DSN of the PostgreSQL server, default
postgres@127.0.0.1:5432) and ``BENCH_TIDINGS_SERVE`` (argv run instead of
``.venv/bin/tidings`` for ``serve``, to measure a patched build).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
TIDINGS = str(VENV_BIN / "tidings")
HOST = "127.0.0.1"
PG_ADMIN_DSN = os.environ.get("BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
TENANT = "bench"
# argv that runs `tidings` for `serve`; point it at a patched entry point to measure a fix
SERVE = shlex.split(os.environ.get("BENCH_TIDINGS_SERVE", "")) or [TIDINGS]


class BenchError(RuntimeError):
    """Something the benchmark needs did not work; the message says what."""


@dataclass(frozen=True)
class Options:
    quick: bool = False
    databases: tuple[str, ...] = ("sqlite", "postgresql")
    profile_dir: Path | None = None
    keep: bool = False


def free_port() -> int:
    """A port that was free a moment ago (aiosmtpd cannot bind port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class Workspace:
    """A temporary directory for the whole run, removed at the end unless kept."""

    def __init__(self, keep: bool = False) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="tidings-bench-"))
        self.keep = keep
        # the server and the `tidings token` command must agree on these
        self.jwt_secret = secrets.token_hex(20)
        self.secret_key = secrets.token_hex(20)
        self._cleanups: list[Callable[[], None]] = []

    def dir(self, name: str) -> Path:
        path = self.root / f"{name}-{uuid.uuid4().hex[:6]}"
        path.mkdir(parents=True)
        return path

    def on_close(self, cleanup: Callable[[], None]) -> None:
        self._cleanups.append(cleanup)

    def close(self) -> None:
        for cleanup in reversed(self._cleanups):
            try:
                cleanup()
            except Exception as exc:
                print(f"bench: cleanup failed: {exc}", file=sys.stderr)
        self._cleanups.clear()
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Database:
    """A migrated Tidings database of the benchmark's own."""

    kind: str  # "sqlite" | "postgresql"
    data_dir: Path
    name: str = ""
    path: Path | None = None  # SQLite file

    @property
    def url(self) -> str | None:
        """TIDINGS_DATABASE_URL (None: embedded SQLite in the data directory)."""
        if self.kind == "sqlite":
            return None
        return f"postgresql+psycopg://postgres@{HOST}:5432/{self.name}"

    @property
    def dsn(self) -> str:
        """What the raw drivers connect to: a file path or a libpq DSN."""
        if self.kind == "sqlite":
            assert self.path is not None
            return str(self.path)
        return f"postgresql://postgres@{HOST}:5432/{self.name}"


def tidings_env(ws: Workspace, db: Database, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    env.update(
        TIDINGS_ENV="development",
        TIDINGS_LOG_LEVEL="WARNING",
        TIDINGS_DATA_DIR=str(db.data_dir),
        TIDINGS_JWT_SECRET=ws.jwt_secret,
        TIDINGS_SECRET_KEY=ws.secret_key,
    )
    if db.url:
        env["TIDINGS_DATABASE_URL"] = db.url
    env.update(extra)
    return env


def _run(argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> str:
    done = subprocess.run(
        argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"{' '.join(argv[:3])} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def create_database(ws: Workspace, kind: str, label: str) -> Database:
    """A fresh database migrated by `tidings migrate`; PostgreSQL ones are dropped at close."""
    data_dir = ws.dir(f"{label}-{kind}")
    if kind == "sqlite":
        db = Database(kind, data_dir, path=data_dir / "tidings.db")
    elif kind == "postgresql":
        db = Database(kind, data_dir, name=f"tidings_bench_{uuid.uuid4().hex[:10]}")
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{db.name}"')
        ws.on_close(lambda: drop_pg_database(db.name))
    else:
        raise BenchError(f"unknown database kind {kind!r}")
    _run([TIDINGS, "migrate"], tidings_env(ws, db), data_dir)
    return db


def drop_pg_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_version() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return str(row[0]) if row else None
    except psycopg.Error:
        return None


def token(ws: Workspace, db: Database, sub: str, *, service: bool) -> str:
    argv = [TIDINGS, "token", "--tenant", TENANT, "--sub", sub, "--ttl", "7200"]
    if service:
        argv += ["--role", "service"]
    return _run(argv, tidings_env(ws, db), db.data_dir).strip()


@dataclass
class Server:
    """A uvicorn process (``tidings serve`` or the bare app), stopped by ``stop``."""

    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def spawn(self) -> subprocess.Popen[bytes]:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.argv, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT
            )
        return self.proc

    async def start(self, timeout: float = 60.0) -> Server:
        """Spawn the process and wait until it answers ``GET /healthz``."""
        self.spawn()
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise BenchError(f"{self.name} exited at start:\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    response = await client.get(f"{self.base_url}/healthz")
                    if response.status_code == 200:
                        return self
                await asyncio.sleep(0.1)
        self.stop()
        raise BenchError(f"{self.name} did not answer within {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def tidings_server(ws: Workspace, db: Database, **extra_env: str) -> Server:
    port = free_port()
    return Server(
        name=f"tidings ({db.kind})",
        argv=[*SERVE, "serve", "--host", HOST, "--port", str(port)],
        env=tidings_env(ws, db, **extra_env),
        cwd=db.data_dir,
        port=port,
        log_path=db.data_dir / "server.log",
    )


def bare_server(db: Database, **extra_env: str) -> Server:
    """``bench.bare_app`` on ``db``; ``extra_env`` sets its other ``BENCH_BARE_*`` variables."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    env.update(BENCH_BARE_KIND=db.kind, BENCH_BARE_DSN=db.dsn, PYTHONPATH=str(ROOT))
    env.update(extra_env)
    return Server(
        name=f"bare app ({db.kind})",
        argv=[
            sys.executable,
            "-m",
            "uvicorn",
            "bench.bare_app:create_app",
            "--factory",
            "--host",
            HOST,
            "--port",
            str(port),
            "--workers",
            "1",
            "--no-access-log",
            "--no-server-header",
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=db.data_dir,
        port=port,
        log_path=db.data_dir / "bare.log",
    )


@contextlib.asynccontextmanager
async def running(server: Server) -> Any:
    await server.start()
    try:
        yield server
    finally:
        server.stop()


# --- wrk ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int
    command: str


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_wrk(output: str, command: str = "") -> WrkResult:
    """Read requests/s, the latency percentiles and the error counts of ``wrk --latency``."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rps is None:
        raise BenchError(f"wrk printed no Requests/sec:\n{output}")
    percentiles = {
        int(m.group(1)): float(m.group(2)) * _UNITS[m.group(3)]
        for m in re.finditer(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
    }
    total = re.search(r"(\d+) requests in", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return WrkResult(
        requests_per_second=float(rps.group(1)),
        p50_ms=percentiles.get(50, 0.0),
        p99_ms=percentiles.get(99, 0.0),
        requests=int(total.group(1)) if total else 0,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(g) for g in errors.groups()) if errors else 0,
        command=command,
    )


def post_script(path: Path, body: str, bearer: str | None) -> Path:
    """A wrk Lua script that POSTs ``body`` as JSON on every request (keep-alive)."""
    lines = [
        'wrk.method = "POST"',
        f"wrk.body = [[{body}]]",
        'wrk.headers["Content-Type"] = "application/json"',
    ]
    if bearer:
        lines.append(f'wrk.headers["Authorization"] = "Bearer {bearer}"')
    path.write_text("\n".join(lines) + "\n")
    return path


async def wrk(
    url: str, script: Path, *, duration: int, connections: int = 32, threads: int = 1
) -> WrkResult:
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed: apt-get update && apt-get install -y wrk")
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), duration + 30)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise BenchError(f"wrk ran past {duration + 30}s") from None
    shown = " ".join(argv).replace(str(script), script.name)
    shown = re.sub(r"http://127\.0\.0\.1:\d+", "http://127.0.0.1:$PORT", shown)
    return parse_wrk(out.decode(), shown)


# --- waiting -----------------------------------------------------------------------


async def wait_until(
    probe: Callable[[], Any], done: Callable[[Any], bool], *, timeout: float, interval: float
) -> Any:
    """Call the async ``probe`` until ``done(value)``; bounded by ``timeout``."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / interval) + 10):
        value = await probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(interval)
    raise BenchError(f"gave up waiting after {timeout:.0f}s (last value {value!r})")


@contextlib.contextmanager
def workspace(keep: bool) -> Iterator[Workspace]:
    ws = Workspace(keep)
    try:
        yield ws
    finally:
        ws.close()


# --- the machine's other load --------------------------------------------------------


def _cpu_times() -> tuple[int, int]:
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields), idle


async def cpu_busy(seconds: float = 1.0) -> float:
    """Percent of all cores busy over ``seconds`` (while the benchmark itself is idle)."""
    try:
        total0, idle0 = _cpu_times()
        await asyncio.sleep(seconds)
        total1, idle1 = _cpu_times()
    except OSError:
        return 0.0
    total = total1 - total0
    return 100.0 * (total - (idle1 - idle0)) / total if total else 0.0


async def wait_for_quiet(limit: float, max_wait: float) -> float:
    """Wait (at most ``max_wait`` s) until other processes use under ``limit`` % CPU."""
    busy = await cpu_busy()
    deadline = time.monotonic() + max_wait
    while busy >= limit and time.monotonic() < deadline:
        busy = await cpu_busy(2.0)
    return busy


def service_client(server: Any, bearer: str, *, timeout: float = 300.0) -> httpx.AsyncClient:
    """A client for ``server``'s API with a service token (the scenarios' own calls)."""
    return httpx.AsyncClient(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {bearer}"},
        timeout=timeout,
    )

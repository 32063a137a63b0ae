"""Helpers of the live and distributed scenarios: user tokens minted in-process, a
WebSocket client that timestamps ``notification.created`` frames, background processes
(``tidings worker``, celery) and the Redis databases they use.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import jwt
import redis
from websockets.asyncio.client import ClientConnection, connect

from bench.harness import ROOT, TENANT, TIDINGS, BenchError, Workspace

REDIS_LIVE_URL = "redis://127.0.0.1:6379/0"  # pub/sub fan-out only: no keys are written
REDIS_BROKER_URL = "redis://127.0.0.1:6379/12"  # the bench's own broker database


def user_token(ws: Workspace, sub: str, ttl: int = 7200) -> str:
    """What ``tidings token --tenant bench --sub SUB`` prints, without a process per user."""
    now = int(time.time())
    claims = {"sub": sub, "tenant": TENANT, "roles": [], "iat": now, "exp": now + ttl}
    return jwt.encode(claims, ws.jwt_secret, algorithm="HS256")


def raise_open_files(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < wanted:
        raise BenchError(f"open-files limit is {target} (hard), {wanted} are needed")


def redis_client(url: str) -> redis.Redis:
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise BenchError(f"Redis is not reachable at {url}: {exc}") from None
    return client


def flush_broker() -> None:
    """Empty the bench's own broker database (db 12), nothing else."""
    redis_client(REDIS_BROKER_URL).flushdb()


class LiveSocket:
    """One ``/v1/ws`` connection; a reader task timestamps ``notification.created``."""

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.created: dict[str, float] = {}  # notification id -> perf_counter at arrival
        self.on_created: Callable[[str, float], None] | None = None
        self.arrived = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, url: str, bearer: str, timeout: float = 20.0) -> LiveSocket:
        conn = await asyncio.wait_for(
            connect(
                url,
                subprotocols=["tidings.v1", f"bearer.{bearer}"],  # type: ignore[list-item]
                open_timeout=timeout,
                max_queue=64,
                ping_interval=None,
            ),
            timeout,
        )
        hello = json.loads(await asyncio.wait_for(conn.recv(), timeout))
        if hello.get("type") != "hello":
            await conn.close()
            raise BenchError(f"first frame was not hello: {hello}")
        sock = cls(conn)
        sock._reader = asyncio.create_task(sock._read(time.monotonic() + 3600))
        return sock

    async def _read(self, deadline: float) -> None:
        with contextlib.suppress(Exception):
            while time.monotonic() < deadline:
                raw = await self.conn.recv()
                at = time.perf_counter()
                frame = json.loads(raw)
                if frame.get("type") != "notification.created":
                    continue
                ident = str(frame["data"]["id"])
                self.created[ident] = at
                self.arrived.set()
                if self.on_created is not None:
                    self.on_created(ident, at)

    async def wait_for(self, ident: str, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while ident not in self.created:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchError(f"notification {ident} never arrived on the socket")
            self.arrived.clear()
            if ident in self.created:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), remaining)
        return self.created[ident]

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.conn.close(), 5)


def ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://", 1) + "/v1/ws"


class Background:
    """A process in a session of its own (a worker and its children), stopped by ``stop``."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.log_path = cwd / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Background:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def check(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise BenchError(f"{self.name} exited ({self.proc.returncode}):\n{self.log_tail()}")

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        # prefork children left behind by a hard stop
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def tidings_worker(name: str, env: dict[str, str], cwd: Path, concurrency: int = 2) -> Background:
    return Background(name, [TIDINGS, "worker", "--concurrency", str(concurrency)], env, cwd)


def pythonpath() -> str:
    """PYTHONPATH for a child that imports ``bench`` (and whatever the parent imports)."""
    extra = os.environ.get("PYTHONPATH")
    return os.pathsep.join([str(ROOT), extra] if extra else [str(ROOT)])

"""Servers of a test's own, for fault tests that stop and start them.

- ``PostgresServer``: a PostgreSQL cluster made with initdb in ``mkdtemp(dir="/tmp")``,
  owned by the postgres user (PostgreSQL refuses to run as root), on a spare port.
- ``RedisServer``: ``redis-server`` on a spare port, without persistence.
- ``ApiProcess``: ``tidings serve`` as a subprocess, ready once ``/healthz`` answers.

Every wait is bounded; ``close()`` (or the fixtures) leave nothing running.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import redis

from tests.conftest import need_service
from tests.distributed.conftest import TIDINGS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, size: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return ""


def _postgres_bin() -> Path | None:
    def version(path: str) -> int:
        name = Path(path).parent.name
        return int(name) if name.isdigit() else 0

    for directory in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        if (Path(directory) / "initdb").exists() and (Path(directory) / "pg_ctl").exists():
            return Path(directory)
    return None


class PostgresServer:
    """A PostgreSQL cluster of the test's own (trust auth, 127.0.0.1 only)."""

    def __init__(self, *, database: str = "tidings") -> None:
        self.bin = _postgres_bin()
        if self.bin is None:
            need_service("PostgreSQL", "no initdb/pg_ctl under /usr/lib/postgresql/*/bin")
        if shutil.which("runuser") is None:
            need_service("PostgreSQL", "runuser is needed to run PostgreSQL as postgres")
        self.database = database
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(dir="/tmp", prefix="tidings-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        try:
            shutil.chown(self.root, "postgres", "postgres")
        except (LookupError, OSError) as exc:
            self.close()
            need_service("PostgreSQL", f"cannot hand {self.root} to the postgres user: {exc}")
        self._initdb()

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{self.database}"

    def _as_postgres(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
        assert self.bin is not None
        command = ["runuser", "-u", "postgres", "--", str(self.bin / args[0]), *args[1:]]
        return subprocess.run(command, capture_output=True, timeout=timeout, cwd=self.root)

    def _initdb(self) -> None:
        done = self._as_postgres(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        if done.returncode != 0:
            self.close()
            need_service("PostgreSQL", f"initdb failed: {done.stderr.decode()[-500:]}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c max_connections=200"
        )
        done = self._as_postgres(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "30",
            "start",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()[-500:] + _tail(self.log)

    def stop(self, mode: str = "fast") -> None:
        done = self._as_postgres(
            "pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop"
        )  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()[-500:] + _tail(self.log)

    @property
    def running(self) -> bool:
        return self._as_postgres("pg_ctl", "-D", str(self.data), "status").returncode == 0

    def create_database(self) -> None:
        done = self._as_postgres(
            "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", self.database
        )
        assert done.returncode == 0, done.stderr.decode()[-500:]

    def output(self) -> str:
        return _tail(self.log)

    def close(self) -> None:
        if self.data.exists() and self.running:
            with contextlib.suppress(Exception):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class RedisServer:
    """``redis-server`` on a spare port (no persistence); stop() and start() again."""

    def __init__(self, directory: Path) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            need_service("Redis", "redis-server is not installed")
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.log = directory / "redis.log"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 10) -> None:
        assert self.process is None, "already running"
        assert self.binary is not None
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--daemonize", "no",
                    "--dir", str(self.directory),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    if client.ping():
                        return
                except redis.RedisError:
                    pass
                assert self.process.poll() is None, _tail(self.log)
                assert time.monotonic() < deadline, "redis-server did not start: " + _tail(self.log)
                time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class ApiProcess:
    """``tidings serve --port P`` as a subprocess of its own session."""

    def __init__(self, env: dict[str, str], log: Path, *, name: str = "api") -> None:
        self.name = name
        self.port = free_port()
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [TIDINGS, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, query: str = "") -> str:
        return f"ws://127.0.0.1:{self.port}/v1/ws" + (f"?{query}" if query else "")

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.process.poll() is None, f"{self.name} exited:\n{self.output()}"
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"{self.name} not ready:\n{self.output()}"
            time.sleep(0.1)

    def output(self) -> str:
        return _tail(self.log)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def migrate(env: dict[str, str], timeout: float = 60) -> None:
    """``tidings migrate`` with the given environment (PostgreSQL is never migrated by serve)."""
    done = subprocess.run([TIDINGS, "migrate"], env=env, capture_output=True, timeout=timeout)
    assert done.returncode == 0, (done.stdout + done.stderr).decode()[-2000:]

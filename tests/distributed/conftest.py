"""Real processes: `tidings worker` on a real broker, against the test PostgreSQL."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import (
    JWT_SECRET,
    SECRET_KEY,
    TEST_REDIS_URL,
    _truncate,
    need_service,
    run_async,
)

TEST_AMQP_URL = os.environ.get("TIDINGS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
TIDINGS = str(Path(sys.executable).with_name("tidings"))


@pytest.fixture
def clean_pg(pg_database: str) -> Iterator[str]:
    yield pg_database
    run_async(lambda: _truncate(pg_database))


@pytest.fixture
def redis_broker() -> Iterator[str]:
    """A Redis database of the test server for this test's queues, emptied before and after."""
    base = TEST_REDIS_URL.rsplit("/", 1)[0]
    url = f"{base}/11"
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        need_service("Redis", f"{url}: {exc}")
    yield url
    client.flushdb()


@pytest.fixture
def amqp_broker() -> Iterator[str]:
    """A RabbitMQ vhost of this test's own, deleted afterwards."""
    ctl = shutil.which("rabbitmqctl")
    vhost = f"tidings-test-{uuid.uuid4().hex[:8]}"
    if ctl is None:
        need_service("RabbitMQ", "rabbitmqctl is not installed")
    made = subprocess.run([ctl, "add_vhost", vhost], capture_output=True, timeout=60)
    if made.returncode != 0:
        need_service("RabbitMQ", made.stderr.decode()[-300:])
    user = TEST_AMQP_URL.split("://", 1)[1].split(":", 1)[0]
    subprocess.run(
        [ctl, "set_permissions", "-p", vhost, user, ".*", ".*", ".*"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    server = TEST_AMQP_URL.split("://", 1)[1].split("/", 1)[0]  # user:password@host:port
    yield f"amqp://{server}/{vhost}"
    subprocess.run([ctl, "delete_vhost", vhost], capture_output=True, timeout=60)


def worker_env(tmp_path: Path, database_url: str, broker_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    env.update(
        {
            "TIDINGS_ENV": "development",
            "TIDINGS_DATA_DIR": str(tmp_path / "worker"),
            "TIDINGS_DATABASE_URL": database_url,
            "TIDINGS_BROKER_URL": broker_url,
            "TIDINGS_SECRET_KEY": SECRET_KEY,
            "TIDINGS_JWT_SECRET": JWT_SECRET,
            "TIDINGS_LOG_LEVEL": "WARNING",
            "TIDINGS_LOG_FORMAT": "console",
            "TIDINGS_RETRY_BASE_SECONDS": "0.2",
            "TIDINGS_SWEEP_INTERVAL_SECONDS": "1",
        }
    )
    env.update(extra)
    return env


class Worker:
    """A `tidings worker` process; stopped (or killed) by the test."""

    def __init__(self, env: dict[str, str], log: Path, *args: str) -> None:
        self.log = log
        with log.open("ab") as out:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                [TIDINGS, "worker", *args],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Any]:
    workers: list[Worker] = []

    def start(env: dict[str, str], *args: str) -> Worker:
        worker = Worker(env, tmp_path / f"worker-{len(workers)}.log", *args)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.kill(signal.SIGTERM)


def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)

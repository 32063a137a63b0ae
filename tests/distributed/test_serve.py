"""`tidings serve --workers N`: several API processes, one set of metrics."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_REDIS_URL
from tests.distributed.conftest import TIDINGS, worker_env
from tests.integration.realtime.conftest import free_port

pytestmark = [pytest.mark.postgresql, pytest.mark.slow]


def test_several_api_processes_share_metrics(tmp_path: Path, clean_pg: str, redis_url: str) -> None:
    env = worker_env(tmp_path, clean_pg, "", TIDINGS_REDIS_URL=TEST_REDIS_URL)
    env.pop("TIDINGS_BROKER_URL")
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("ab") as out:
        server = subprocess.Popen(
            [TIDINGS, "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.2)
        for _ in range(40):  # new connections: the kernel spreads them over the processes
            assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        text = httpx.get(f"{base}/metrics", timeout=5).text
        pattern = r'tidings_http_requests_total\{method="GET",route="/healthz",status="200"\} (\S+)'
        total = sum(float(v) for v in re.findall(pattern, text))
        assert total >= 41, text[:2000]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_more_than_one_worker_needs_postgresql_and_redis(tmp_path: Path) -> None:
    env = worker_env(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/t.db", "")
    env.pop("TIDINGS_BROKER_URL")
    result = subprocess.run(
        [TIDINGS, "serve", "--workers", "2"], env=env, capture_output=True, timeout=60
    )
    assert result.returncode == 2
    assert b"PostgreSQL" in result.stderr

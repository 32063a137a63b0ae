"""Faults with real processes: nothing accepted is lost."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Tokens, make_settings, running
from tests.distributed.conftest import worker_env
from tests.fixtures.smtp_sink import SMTPSink
from tests.integration.helpers import settled

pytestmark = [pytest.mark.postgresql, pytest.mark.faults]


async def test_worker_killed_mid_batch_loses_nothing(
    tmp_path: Path,
    clean_pg: str,
    redis_broker: str,
    smtp_sink: SMTPSink,
    start_worker: Any,
) -> None:
    env = worker_env(
        tmp_path,
        clean_pg,
        redis_broker,
        TIDINGS_SMTP_HOST="127.0.0.1",
        TIDINGS_SMTP_PORT=str(smtp_sink.port),
        TIDINGS_SMTP_STARTTLS="false",
        TIDINGS_CLAIM_LEASE_SECONDS="3",
    )
    first = start_worker(env, "--concurrency", "1")
    settings = make_settings(tmp_path / "api", clean_pg, broker_url=redis_broker)
    tokens = Tokens(settings)
    ids = [f"c{i:04d}" for i in range(1000)]
    async with running(settings) as api:
        for start in range(0, 1000, 100):
            r = await api.client.post(
                "/v1/topics/warmup/subscribers",
                headers=tokens.service(),
                json={"recipient_ids": ids[start : start + 100]},
            )
            assert r.status_code == 200
        async with api.ctx.db.transaction() as session:  # addresses for all, in one go
            from sqlalchemy import update

            from tidings.models import Recipient

            for rid in ids:
                await session.execute(
                    update(Recipient).where(Recipient.id == rid).values(email=f"{rid}@example.test")
                )
        r = await api.client.post(
            "/v1/notifications",
            headers=tokens.service(),
            json={"recipients": ids, "title": "Offer", "body": "b", "channels": ["email"]},
        )
        assert r.status_code == 202
        send_id = r.json()["id"]
        # SIGKILL the worker in the middle of the work, with no beat running anywhere
        while len(smtp_sink.messages) < 100:
            await asyncio.sleep(0.05)
            assert first.process.poll() is None, first.output()
        first.kill(signal.SIGKILL)
        killed_at = len(smtp_sink.messages)
        assert killed_at < 1000
        second = start_worker(env, "--concurrency", "2")
        try:
            await smtp_sink.wait_for_messages_async(1000, timeout=120)
            status = await asyncio.wait_for(settled(api.client, tokens, send_id), 120)
        except (TimeoutError, AssertionError):
            raise AssertionError(second.output()) from None
    assert status["counts"] == {"email": {"sent": 1000}}
    per_address = Counter(rcpt for m in smtp_sink.messages for rcpt in m.rcpt_tos)
    assert set(per_address) == {f"{rid}@example.test" for rid in ids}  # nobody lost
    duplicates = sum(per_address.values()) - 1000
    # only what was in flight when the worker died can go out twice: one batch of 100
    assert duplicates <= 100, duplicates
    print(f"killed after {killed_at} messages; {duplicates} duplicates")

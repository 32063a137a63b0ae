"""The delivery path through Celery workers, on Redis and on RabbitMQ."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Tokens, make_settings, running
from tests.distributed.conftest import worker_env
from tests.fixtures.smtp_sink import SMTPSink
from tests.integration.helpers import deliveries, eventually, send, settled

pytestmark = [pytest.mark.postgresql, pytest.mark.slow]


@pytest.mark.parametrize("broker", ["redis_broker", "amqp_broker"])
async def test_sends_are_delivered_by_workers(
    broker: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    clean_pg: str,
    smtp_sink: SMTPSink,
    start_worker: Any,
) -> None:
    broker_url: str = request.getfixturevalue(broker)
    env = worker_env(
        tmp_path,
        clean_pg,
        broker_url,
        TIDINGS_SMTP_HOST="127.0.0.1",
        TIDINGS_SMTP_PORT=str(smtp_sink.port),
        TIDINGS_SMTP_STARTTLS="false",
    )
    worker = start_worker(env, "--concurrency", "2")
    settings = make_settings(tmp_path / "api", clean_pg, broker_url=broker_url)
    tokens = Tokens(settings)
    async with running(settings) as api:
        ids = [f"c{i}" for i in range(20)]
        for rid in ids:
            await api.client.put(
                f"/v1/recipients/{rid}",
                json={"email": f"{rid}@example.test"},
                headers=tokens.service(),
            )
        accepted = await send(
            api.client,
            tokens,
            recipients=ids,
            title="Interview",
            body="Tomorrow",
            channels=["in_app", "email"],
        )
        try:
            await smtp_sink.wait_for_messages_async(20, timeout=60)
        except TimeoutError:
            raise AssertionError(worker.output()) from None
        status = await settled(api.client, tokens, accepted["id"])
        assert status["counts"] == {"in_app": {"delivered": 20}, "email": {"sent": 20}}
        # a topic send is expanded by a worker too
        await api.client.post(
            "/v1/topics/all/subscribers", json={"recipient_ids": ids[:5]}, headers=tokens.service()
        )
        topic = await send(
            api.client, tokens, topic="all", title="News", body="b", channels=["email"]
        )

        async def expanded() -> bool:
            rows = await deliveries(api.client, tokens, send_id=topic["id"])
            return len(rows) == 5 and all(r["status"] == "sent" for r in rows)

        await eventually(expanded, timeout=60)
        assert len(smtp_sink.messages) == 25


async def test_broker_outage_never_fails_a_send_and_nothing_is_lost(
    tmp_path: Path,
    clean_pg: str,
    redis_broker: str,
    smtp_sink: SMTPSink,
    start_worker: Any,
) -> None:
    # the API publishes to a broker that is down: requests still answer 202 at once
    dead = make_settings(tmp_path / "api", clean_pg, broker_url="redis://127.0.0.1:1/0")
    tokens = Tokens(dead)
    async with running(dead) as api:
        await api.client.put(
            "/v1/recipients/c", json={"email": "c@example.test"}, headers=tokens.service()
        )
        loop = asyncio.get_running_loop()
        started = loop.time()
        sends = [
            await send(
                api.client, tokens, recipients=["c"], title=f"t{i}", body="b", channels=["email"]
            )
            for i in range(10)
        ]
        assert loop.time() - started < 5
    # a worker on a working broker finds the rows nobody carried
    env = worker_env(
        tmp_path,
        clean_pg,
        redis_broker,
        TIDINGS_SMTP_HOST="127.0.0.1",
        TIDINGS_SMTP_PORT=str(smtp_sink.port),
        TIDINGS_SMTP_STARTTLS="false",
        TIDINGS_CLAIM_LEASE_SECONDS="2",
    )
    worker = start_worker(env)
    try:
        await smtp_sink.wait_for_messages_async(10, timeout=60)
    except TimeoutError:
        raise AssertionError(worker.output()) from None
    assert sorted(m.message["Subject"] for m in smtp_sink.messages) == sorted(
        f"t{i}" for i in range(10)
    )
    assert len(sends) == 10

"""Nothing accepted is lost: rows committed but never carried are delivered after a restart."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from tests.conftest import Tokens, running
from tests.integration.helpers import deliveries, send, settled
from tidings.config import Settings
from tidings.delivery import repository
from tidings.models import Delivery


async def test_send_committed_before_a_crash_is_delivered_after_restart(
    settings: Settings, tokens: Tokens
) -> None:
    # run_deliveries=False: the process "dies" between the commit and any hand-over
    async with running(settings, run_deliveries=False) as svc:
        await svc.client.put(
            "/v1/recipients/c", json={"email": "c@example.test"}, headers=tokens.service()
        )
        accepted = await send(
            svc.client, tokens, recipients=["c"], title="t", body="b", channels=["in_app", "email"]
        )
        rows = await deliveries(svc.client, tokens, send_id=accepted["id"], channel="email")
        assert rows[0]["status"] == "pending"
    async with running(settings) as svc:
        status = await settled(svc.client, tokens, accepted["id"])
        assert status["counts"] == {"in_app": {"delivered": 1}, "email": {"sent": 1}}
        assert len(list(settings.mail_dir.glob("*.eml"))) == 1


async def test_abandoned_claim_is_taken_over_after_its_lease(
    settings: Settings, tokens: Tokens
) -> None:
    async with running(settings, run_deliveries=False) as svc:
        await svc.client.put(
            "/v1/recipients/c", json={"email": "c@example.test"}, headers=tokens.service()
        )
        accepted = await send(
            svc.client, tokens, recipients=["c"], title="t", body="b", channels=["email"]
        )
        # a worker claimed the row and died: status sending, lease ended a moment ago
        async with svc.ctx.db.transaction() as session:
            await session.execute(
                update(Delivery).values(
                    status="sending",
                    attempts=1,
                    not_before=svc.ctx.clock.now() - timedelta(seconds=5),
                )
            )
    async with running(settings) as svc:
        await settled(svc.client, tokens, accepted["id"])
        (row,) = await deliveries(svc.client, tokens, send_id=accepted["id"])
        assert (row["status"], row["attempts"]) == ("sent", 2)


async def test_duplicate_hand_over_sends_once(settings: Settings, tokens: Tokens) -> None:
    async with running(settings) as svc:
        await svc.client.put(
            "/v1/recipients/c", json={"email": "c@example.test"}, headers=tokens.service()
        )
        accepted = await send(
            svc.client, tokens, recipients=["c"], title="t", body="b", channels=["email"]
        )
        (row,) = await deliveries(svc.client, tokens, send_id=accepted["id"])
        for _ in range(5):  # the same id signalled again and again
            svc.ctx.dispatcher.dispatch([(row["id"], "email")])
        await settled(svc.client, tokens, accepted["id"])
        (row,) = await deliveries(svc.client, tokens, send_id=accepted["id"])
        assert (row["status"], row["attempts"]) == ("sent", 1)
        assert len(list(settings.mail_dir.glob("*.eml"))) == 1


async def test_outcome_of_a_claim_taken_over_is_dropped_and_others_in_its_batch_kept(
    settings: Settings, tokens: Tokens
) -> None:
    async with running(settings, run_deliveries=False) as svc:
        for name in ("a", "b"):
            await svc.client.put(
                f"/v1/recipients/{name}",
                json={"email": f"{name}@example.test"},
                headers=tokens.service(),
            )
        accepted = await send(
            svc.client, tokens, recipients=["a", "b"], title="t", body="b", channels=["email"]
        )
        rows = await deliveries(svc.client, tokens, send_id=accepted["id"])
        ids = sorted(row["id"] for row in rows)
        now = svc.ctx.clock.now()
        async with svc.ctx.db.transaction() as session:
            won = dict(await repository.claim(session, ids, now, timedelta(minutes=5)))
        assert won == {ids[0]: 1, ids[1]: 1}
        # another worker took the first row over after our lease: its attempt is newer
        async with svc.ctx.db.transaction() as session:
            await session.execute(update(Delivery).where(Delivery.id == ids[0]).values(attempts=2))
        sent = {"status": "sent", "provider": "file", "updated_at": now}
        async with svc.ctx.db.transaction() as session:
            written = await repository.record_many(
                session, [(ids[0], 1, dict(sent)), (ids[1], 1, dict(sent))]
            )
        assert written == {ids[1]}
        after = {
            row["id"]: (row["status"], row["attempts"])
            for row in await deliveries(svc.client, tokens, send_id=accepted["id"])
        }
        assert after == {ids[0]: ("sending", 2), ids[1]: ("sent", 1)}

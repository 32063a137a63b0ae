"""Export shows everything stored about a recipient; erasure leaves nothing behind."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.conftest import Service, Tokens
from tests.integration.helpers import send, settled
from tidings.models import Delivery, Notification, Recipient, TopicSubscription


async def test_export_then_erase(service: Service, tokens: Tokens) -> None:
    client = service.client
    await client.put(
        "/v1/recipients/ada",
        headers=tokens.service(),
        json={"name": "Ada", "email": "ada@example.test", "data": {"team": "x"}},
    )
    await client.post(
        "/v1/topics/eng/subscribers", json={"recipient_ids": ["ada"]}, headers=tokens.service()
    )
    accepted = await send(
        client,
        tokens,
        recipients=["ada", "bob"],
        title="Hi",
        body="There",
        channels=["in_app", "email"],
    )
    await settled(client, tokens, accepted["id"])
    (mine,) = [n for n in accepted["notifications"] if n["recipient_id"] == "ada"]
    await client.delete(f"/v1/me/notifications/{mine['id']}", headers=tokens.user("ada"))

    r = await client.get("/v1/recipients/ada/export", headers=tokens.service())
    assert r.status_code == 200
    export = r.json()
    assert export["recipient"]["email"] == "ada@example.test"
    assert export["recipient"]["data"] == {"team": "x"}
    assert [t["topic"] for t in export["topics"]] == ["eng"]
    (notification,) = export["notifications"]
    assert notification["title"] == "Hi" and notification["archived_at"]  # archived included
    assert notification["content"]["email"]["subject"] == "Hi"
    assert {d["channel"] for d in export["deliveries"]} == {"in_app", "email"}
    assert (
        await client.get("/v1/recipients/ada/export", headers=tokens.service("globex"))
    ).status_code == 404
    assert (
        await client.get("/v1/recipients/ada/export", headers=tokens.user("ada"))
    ).status_code == 403

    assert (await client.delete("/v1/recipients/ada", headers=tokens.service())).status_code == 204
    async with service.ctx.db.transaction(write=False) as session:
        for model in (Recipient, Notification, Delivery, TopicSubscription):
            column = model.id if model is Recipient else model.recipient_id  # type: ignore[attr-defined]
            left = await session.scalar(
                select(func.count()).select_from(model).where(column == "ada")
            )
            assert left == 0, model.__name__
        bob = await session.scalar(select(func.count()).select_from(Notification))
    assert bob == 1  # other recipients keep theirs
    assert (
        await client.get("/v1/recipients/ada/export", headers=tokens.service())
    ).status_code == 404

"""E-mail end to end: a real SMTP server in the test process receives what Tidings sends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Service, Tokens, make_settings, running
from tests.fixtures.smtp_sink import SMTPSink
from tests.integration.helpers import deliveries, eventually, send, settled


@pytest.fixture
async def mailer(tmp_path: Path, database_url: str, smtp_sink: SMTPSink) -> AsyncIterator[Service]:
    settings = make_settings(
        tmp_path,
        database_url,
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
        smtp_starttls=False,
        smtp_from="Tidings <no-reply@tidings.test>",
        smtp_pool_size=2,
        delivery_max_attempts=3,
    )
    async with running(settings) as svc:
        yield svc


async def _recipient(svc: Service, tokens: Tokens, rid: str, email: str, **extra: Any) -> None:
    r = await svc.client.put(
        f"/v1/recipients/{rid}", json={"email": email, **extra}, headers=tokens.service()
    )
    assert r.status_code in (200, 201), r.text


async def test_template_email_has_headers_both_parts_and_escaped_data(
    mailer: Service, tokens: Tokens, smtp_sink: SMTPSink
) -> None:
    await _recipient(mailer, tokens, "cand-1", "ada@example.test", name="Ada")
    await mailer.client.put(
        "/v1/tenant/settings",
        headers=tokens.admin(),
        json={"email_from": "Acme Hiring <jobs@acme.test>", "email_reply_to": "talent@acme.test"},
    )
    accepted = await send(
        mailer.client,
        tokens,
        recipients=["cand-1"],
        template="application_received",
        channels=["email"],
        data={
            "candidate_name": "Ada",
            "job_title": "<script>alert(1)</script>",
            "company_name": "Acme",
            "application_url": "https://ats.example.test/a/1",
        },
    )
    await settled(mailer.client, tokens, accepted["id"])
    (received,) = await smtp_sink.wait_for_messages_async(1)
    message = received.message
    assert received.rcpt_tos == ["ada@example.test"]
    assert message["From"] == "Acme Hiring <jobs@acme.test>"
    assert message["Reply-To"] == "talent@acme.test"
    assert message["Message-ID"] and message["Date"]
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<script>alert(1)</script>" in text
    assert "<script>" not in html and "&lt;script&gt;" in html
    (row,) = await deliveries(mailer.client, tokens, send_id=accepted["id"])
    assert row["status"] == "sent" and row["provider"] == "smtp"
    assert row["provider_message_id"] == message["Message-ID"]
    assert row["attempts"] == 1


async def test_literal_email_uses_escaped_body_in_layout(
    mailer: Service, tokens: Tokens, smtp_sink: SMTPSink
) -> None:
    await _recipient(mailer, tokens, "c", "c@example.test")
    await send(
        mailer.client, tokens, recipients=["c"], title="Offer", body="a < b & c", channels=["email"]
    )
    (received,) = await smtp_sink.wait_for_messages_async(1)
    assert received.message["Subject"] == "Offer"
    assert received.message["From"] == "Tidings <no-reply@tidings.test>"
    html = received.message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "a &lt; b &amp; c" in html


async def test_many_emails_share_a_small_pool(
    mailer: Service, tokens: Tokens, smtp_sink: SMTPSink
) -> None:
    ids = [f"c{i}" for i in range(30)]
    for rid in ids:
        await _recipient(mailer, tokens, rid, f"{rid}@example.test")
    accepted = await send(
        mailer.client, tokens, recipients=ids, title="t", body="b", channels=["email"]
    )
    await settled(mailer.client, tokens, accepted["id"])
    await smtp_sink.wait_for_messages_async(30)
    assert smtp_sink.connections <= 2


async def test_transient_failure_is_retried_then_sent(
    mailer: Service, tokens: Tokens, smtp_sink: SMTPSink
) -> None:
    await _recipient(mailer, tokens, "c", "c@example.test")
    smtp_sink.fail_data_times = 2
    accepted = await send(
        mailer.client, tokens, recipients=["c"], title="t", body="b", channels=["email"]
    )
    await settled(mailer.client, tokens, accepted["id"])
    (row,) = await deliveries(mailer.client, tokens, send_id=accepted["id"])
    assert row["status"] == "sent" and row["attempts"] == 3
    assert len(smtp_sink.messages) == 1


async def test_exhausted_retries_go_dead_and_admin_can_retry(
    mailer: Service, tokens: Tokens, smtp_sink: SMTPSink
) -> None:
    await _recipient(mailer, tokens, "c", "c@example.test")
    smtp_sink.fail_rcpt["c@example.test"] = (450, "4.2.1 Mailbox busy")
    accepted = await send(
        mailer.client, tokens, recipients=["c"], title="t", body="b", channels=["email"]
    )
    await settled(mailer.client, tokens, accepted["id"])
    (row,) = await deliveries(mailer.client, tokens, send_id=accepted["id"])
    assert row["status"] == "dead" and row["attempts"] == 3 and "450" in row["last_error"]
    assert (await deliveries(mailer.client, tokens, status="dead"))[0]["id"] == row["id"]

    r = await mailer.client.post(f"/v1/deliveries/{row['id']}/retry", headers=tokens.service())
    assert r.status_code == 403
    del smtp_sink.fail_rcpt["c@example.test"]
    r = await mailer.client.post(f"/v1/deliveries/{row['id']}/retry", headers=tokens.admin())
    assert r.status_code == 200 and r.json()["status"] == "pending"
    await settled(mailer.client, tokens, accepted["id"])
    (row,) = await deliveries(mailer.client, tokens, send_id=accepted["id"])
    assert row["status"] == "sent"
    r = await mailer.client.post(f"/v1/deliveries/{row['id']}/retry", headers=tokens.admin())
    assert r.status_code == 409


async def test_permanent_rcpt_rejection_fails_at_once_and_suppresses_address(
    mailer: Service, tokens: Tokens, smtp_sink: SMTPSink
) -> None:
    await _recipient(mailer, tokens, "c", "gone@example.test")
    smtp_sink.fail_rcpt["gone@example.test"] = (550, "5.1.1 No such user")
    accepted = await send(
        mailer.client, tokens, recipients=["c"], title="t", body="b", channels=["email"]
    )
    await settled(mailer.client, tokens, accepted["id"])
    (row,) = await deliveries(mailer.client, tokens, send_id=accepted["id"])
    assert (row["status"], row["reason"], row["attempts"]) == ("failed", "invalid_address", 1)
    again = await send(
        mailer.client, tokens, recipients=["c"], title="t", body="b", channels=["email"]
    )
    (row,) = await deliveries(mailer.client, tokens, send_id=again["id"])
    assert (row["status"], row["reason"]) == ("suppressed", "invalid_address")
    # the suppression list is the tenant's own
    r = await mailer.client.put(
        "/v1/recipients/c", json={"email": "gone@example.test"}, headers=tokens.service("globex")
    )
    assert r.status_code == 201
    other = await send(
        mailer.client,
        tokens,
        tenant="globex",
        recipients=["c"],
        title="t",
        body="b",
        channels=["email"],
    )
    await settled(mailer.client, tokens, other["id"], tenant="globex")
    (row,) = await deliveries(mailer.client, tokens, tenant="globex", send_id=other["id"])
    assert row["status"] == "failed"  # attempted (and refused again), not suppressed


async def test_without_smtp_host_mail_goes_to_eml_files(service: Service, tokens: Tokens) -> None:
    await _recipient(service, tokens, "c", "c@example.test")
    accepted = await send(
        service.client, tokens, recipients=["c"], title="Files", body="b", channels=["email"]
    )
    await settled(service.client, tokens, accepted["id"])
    mail_dir = service.ctx.settings.mail_dir
    files = await eventually(lambda: _eml(mail_dir))
    assert b"Subject: Files" in await asyncio.to_thread(files[0].read_bytes)


async def _eml(directory: Path) -> list[Path]:
    return await asyncio.to_thread(lambda: sorted(directory.glob("*.eml")))

"""One-click e-mail unsubscribe (RFC 8058): headers on every non-urgent e-mail, a
confirmation page that changes nothing, signed tokens, and suppression afterwards."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SECRET_KEY, Service, Tokens, make_settings, running
from tests.fixtures.smtp_sink import SMTPSink
from tests.integration.helpers import deliveries, send, settled
from tidings.optout.tokens import issue

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
async def mailer(tmp_path: Path, database_url: str, smtp_sink: SMTPSink) -> AsyncIterator[Service]:
    settings = make_settings(
        tmp_path,
        database_url,
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
        smtp_starttls=False,
        public_url="https://notify.acme.test",
        unsubscribe_mailto="unsubscribe@acme.test",
    )
    async with running(settings) as svc:
        r = await svc.client.put(
            "/v1/recipients/cand-1",
            json={"email": "ada@example.test"},
            headers=Tokens(settings).service(),
        )
        assert r.status_code == 201
        yield svc


async def _mail(
    svc: Service, tokens: Tokens, category: str, priority: str = "normal"
) -> dict[str, Any]:
    accepted = await send(
        svc.client,
        tokens,
        recipients=["cand-1"],
        title="Update",
        body="News",
        category=category,
        priority=priority,
        channels=["email"],
    )
    await settled(svc.client, tokens, accepted["id"])
    (row,) = await deliveries(svc.client, tokens, send_id=accepted["id"])
    return row


def _path(link: str) -> str:
    return link.removeprefix("https://notify.acme.test")


async def test_every_non_urgent_email_carries_one_click_headers(
    mailer: Service, tokens: Tokens, smtp_sink: SMTPSink
) -> None:
    await _mail(mailer, tokens, "offer")
    await _mail(mailer, tokens, "offer", priority="urgent")
    normal, urgent = [m.message for m in await smtp_sink.wait_for_messages_async(2)]
    header = normal["List-Unsubscribe"]
    link = re.search(r"<(https://notify\.acme\.test/v1/unsubscribe/[^>]+)>", header)
    assert link and "<mailto:unsubscribe@acme.test?subject=unsubscribe>" in header
    assert normal["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert urgent["List-Unsubscribe"] is None and urgent["List-Unsubscribe-Post"] is None

    # the confirmation page changes nothing
    page = await mailer.client.get(_path(link.group(1)))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "offer" in page.text and "all e-mail except urgent" in page.text
    assert (await _mail(mailer, tokens, "offer"))["status"] == "sent"

    # one click (what a mail client posts) opts out of the category, urgent included
    r = await mailer.client.post(
        _path(link.group(1)), content=b"List-Unsubscribe=One-Click", headers=FORM
    )
    assert r.status_code == 200, r.text
    for priority in ("normal", "urgent"):
        row = await _mail(mailer, tokens, "offer", priority)
        assert (row["status"], row["reason"]) == ("suppressed", "opt_out")
    assert (await _mail(mailer, tokens, "interview"))["status"] == "sent"
    # repeating it is harmless
    again = await mailer.client.post(_path(link.group(1)), content=b"", headers=FORM)
    assert again.status_code == 200


async def test_all_but_urgent(mailer: Service, tokens: Tokens) -> None:
    token = issue(SECRET_KEY, tenant="acme", recipient="cand-1", scope="job", now=datetime.now(UTC))
    r = await mailer.client.post(f"/v1/unsubscribe/{token}", content=b"scope=all", headers=FORM)
    assert r.status_code == 200 and "all e-mail except urgent" in r.text
    assert (await _mail(mailer, tokens, "interview"))["reason"] == "opt_out"
    assert (await _mail(mailer, tokens, "interview", "urgent"))["status"] == "sent"
    export = await mailer.client.get("/v1/recipients/cand-1/export", headers=tokens.service())
    assert [o["scope"] for o in export.json()["opt_outs"]] == ["*"]


@pytest.mark.parametrize("case", ["tampered", "expired", "garbage", "future"])
async def test_bad_tokens_are_refused_and_change_nothing(
    mailer: Service, tokens: Tokens, case: str
) -> None:
    now = datetime.now(UTC)
    token = issue(SECRET_KEY, tenant="acme", recipient="cand-1", scope="offer", now=now)
    if case == "tampered":
        other = issue(SECRET_KEY, tenant="acme", recipient="cand-2", scope="offer", now=now)
        token = other.split(".")[0] + "." + token.split(".")[1]
    elif case == "expired":
        token = issue(
            SECRET_KEY,
            tenant="acme",
            recipient="cand-1",
            scope="offer",
            now=now - timedelta(days=366),
        )
    elif case == "garbage":
        token = "not-a-token"
    else:
        token = issue(
            SECRET_KEY,
            tenant="acme",
            recipient="cand-1",
            scope="offer",
            now=now + timedelta(days=1),
        )
    for method in ("GET", "POST"):
        r = await mailer.client.request(
            method, f"/v1/unsubscribe/{token}", content=b"scope=all", headers=FORM
        )
        assert r.status_code == 400, r.text
        assert r.headers["content-type"] == "application/problem+json"
    assert (await _mail(mailer, tokens, "offer"))["status"] == "sent"


async def test_bad_forms_are_refused(mailer: Service, tokens: Tokens) -> None:
    token = issue(
        SECRET_KEY, tenant="acme", recipient="cand-1", scope="offer", now=datetime.now(UTC)
    )
    path = f"/v1/unsubscribe/{token}"
    assert (await mailer.client.post(path, json={"scope": "all"})).status_code == 415
    r = await mailer.client.post(path, content=b"scope=everything", headers=FORM)
    assert r.status_code == 422
    r = await mailer.client.post(path, content=b"scope=%00", headers=FORM)
    assert r.status_code == 422
    assert (await _mail(mailer, tokens, "offer"))["status"] == "sent"


async def test_template_unsubscribe_url_is_the_signed_link(
    mailer: Service, tokens: Tokens, smtp_sink: SMTPSink
) -> None:
    accepted = await send(
        mailer.client,
        tokens,
        recipients=["cand-1"],
        template="application_received",
        data={
            "candidate_name": "A",
            "job_title": "B",
            "company_name": "C",
            "application_url": "https://ats.acme.test/a/1",
        },
        channels=["email"],
    )
    await settled(mailer.client, tokens, accepted["id"])
    (received,) = await smtp_sink.wait_for_messages_async(1)
    html = received.message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    links = re.findall(r"https://notify\.acme\.test/v1/unsubscribe/[A-Za-z0-9_.-]+", html)
    assert links, html
    page = await mailer.client.get(_path(links[0]))
    assert page.status_code == 200

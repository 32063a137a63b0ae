"""The ingest baseline (bench/bare_app.py) runs the statements Tidings runs for a send.

Both are traced at the sqlite3 connection; for a second one-recipient in-app send (the
tenant and recipient exist by then), each writes the same tables in the same order, and
the baseline's answer has Tidings' shape.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from bench import bare_app

from tests.conftest import Tokens, make_settings, running
from tidings.kit import sqlite as inline_sqlite

BODY = {"recipients": ["r1"], "title": "t", "body": "b", "channels": ["in_app"]}
_SHAPE = re.compile(r"^(INSERT INTO|SELECT .*? FROM|UPDATE|DELETE FROM)\s+(\w+)", re.S)


def _traced(log: list[str]) -> Callable[..., sqlite3.Connection]:
    connect = sqlite3.connect

    def traced_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection = connect(*args, **kwargs)
        connection.set_trace_callback(log.append)
        return connection

    return traced_connect


def _last_transaction(log: list[str]) -> list[str]:
    """The statements of the last transaction, as "verb table" (an executemany traces
    each of its rows: consecutive repeats are one statement)."""
    begin = max(i for i, s in enumerate(log) if s.startswith("BEGIN"))
    end = next(i for i in range(begin, len(log)) if log[i] == "COMMIT")
    shapes = []
    for statement in log[begin + 1 : end]:
        match = _SHAPE.match(statement)
        assert match, statement
        shape = f"{match.group(1).split()[0]} {match.group(2)}"
        if not shapes or shapes[-1] != shape:
            shapes.append(shape)
    return shapes


async def test_the_bare_app_runs_the_statements_of_a_tidings_send(
    tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours_file, bare_file = tmp_path / "tidings.db", tmp_path / "bare.db"
    shutil.copy(sqlite_template, ours_file)
    shutil.copy(sqlite_template, bare_file)

    ours_log: list[str] = []
    monkeypatch.setattr(inline_sqlite.sqlite3, "connect", _traced(ours_log))
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{ours_file}")
    headers = Tokens(settings).service("bare")
    async with running(settings) as service:
        for _ in range(2):
            answer = await service.client.post("/v1/notifications", json=BODY, headers=headers)
            assert answer.status_code == 202, answer.text
    ours_answer = answer.json()
    monkeypatch.undo()

    bare_log: list[str] = []
    monkeypatch.setattr(bare_app.sqlite3, "connect", _traced(bare_log))
    monkeypatch.setenv("BENCH_BARE_KIND", "sqlite")
    monkeypatch.setenv("BENCH_BARE_DSN", str(bare_file))
    app = bare_app.create_app()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bare.test") as client:
            for _ in range(2):
                answer = await client.post("/v1/notifications", json=BODY)
                assert answer.status_code == 202, answer.text
    bare_answer = answer.json()

    assert (
        _last_transaction(bare_log)
        == _last_transaction(ours_log)
        == [
            "INSERT sends",
            "SELECT tenants",
            "INSERT notifications",
            "INSERT deliveries",
            "INSERT live_counters",
            "INSERT live_events",
        ]
    )
    assert bare_answer.keys() == ours_answer.keys()
    assert bare_answer["status"] == ours_answer["status"] == "accepted"
    assert [n["recipient_id"] for n in bare_answer["notifications"]] == ["r1"]

    # the baseline's live log is what Tidings' would be: an item and its count, in seq order
    with sqlite3.connect(bare_file) as check:
        events = check.execute(
            "SELECT seq, type, json_extract(data, '$.count') FROM live_events"
            " WHERE recipient_id = 'r1' ORDER BY seq"
        ).fetchall()
        counter = check.execute(
            "SELECT seq, unread FROM live_counters WHERE recipient_id = 'r1'"
        ).fetchone()
    assert events == [
        (1, "notification.created", None),
        (2, "unread_count", 1),
        (3, "notification.created", None),
        (4, "unread_count", 2),
    ]
    assert counter == (4, 2)
    item_keys = "SELECT data FROM live_events WHERE type = 'notification.created' LIMIT 1"
    with sqlite3.connect(ours_file) as ours, sqlite3.connect(bare_file) as bare:
        (ours_item,) = ours.execute(item_keys).fetchone()
        (bare_item,) = bare.execute(item_keys).fetchone()
    assert json.loads(bare_item).keys() == json.loads(ours_item).keys()

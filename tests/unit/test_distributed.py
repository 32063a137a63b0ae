"""Delivery ids go to their channel's queue in tasks of at most 100."""

from __future__ import annotations

from tidings.distributed import CHUNK, chunks_by_queue, queue_for


def test_chunks_by_queue() -> None:
    due = [(f"e{i}", "email") for i in range(250)] + [("s1", "sms"), ("x", "carrier-pigeon")]
    chunks = chunks_by_queue(due)
    assert [(q, len(ids)) for q, ids in chunks] == [
        ("tidings.email", 100),
        ("tidings.email", 100),
        ("tidings.email", 50),
        ("tidings.sms", 1),
        ("tidings.default", 1),
    ]
    assert [i for q, ids in chunks if q == "tidings.email" for i in ids] == [
        f"e{i}" for i in range(250)
    ]
    assert CHUNK == 100
    assert queue_for("in_app") == "tidings.in_app"

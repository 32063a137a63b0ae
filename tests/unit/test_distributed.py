"""Delivery ids go to their channel's queue in tasks of at most 100."""

from __future__ import annotations

import subprocess
import sys

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


def test_the_worker_parent_prepares_what_its_children_would_repeat() -> None:
    # in a fresh interpreter: this one has imported the drivers long ago
    script = """
import sys
from tidings.bootstrap import prepare_for_fork
from tidings.config import Settings
from tidings.migrate import head_revision
before = {"psycopg", "httpcore"} & set(sys.modules)
prepare_for_fork(Settings(
    database_url="postgresql+psycopg://nobody@127.0.0.1:1/none",
    secret_key="k" * 40, jwt_secret="j" * 40,
))
loaded = {"psycopg", "httpcore"} <= set(sys.modules)
print(sorted(before), loaded, head_revision.cache_info().currsize)
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert out == ["[]", "True", "1"]

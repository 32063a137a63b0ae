"""UUIDv7 ids: right version and variant, time-ordered, unique, monotonic."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable
from itertools import pairwise
from types import SimpleNamespace

import pytest

from tidings.kit import ids
from tidings.kit.ids import uuid7
from tidings.kit.types import UUID_PATTERN


def millis(value: str) -> int:
    return uuid.UUID(value).int >> 80


def test_format_version_and_variant() -> None:
    value = uuid7()
    assert re.match(UUID_PATTERN, value)
    parsed = uuid.UUID(value)
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert str(parsed) == value


def test_timestamp_is_the_current_unix_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    value = uuid7()
    after = time.time_ns() // 1_000_000
    # never earlier than now; later only by the few ms a burst of ids may borrow
    assert before <= millis(value) <= after + 1000


def test_ten_thousand_ids_are_unique_and_strictly_increasing() -> None:
    values = [uuid7() for _ in range(10_000)]
    assert len(set(values)) == len(values)
    assert all(a < b for a, b in pairwise(values))
    assert all(uuid.UUID(a).int < uuid.UUID(b).int for a, b in pairwise(values))
    assert all(uuid.UUID(v).version == 7 for v in values)


def fake_clock(monkeypatch: pytest.MonkeyPatch, time_ns: Callable[[], int]) -> None:
    monkeypatch.setattr(ids, "time", SimpleNamespace(time_ns=time_ns))


def test_order_holds_when_the_clock_stands_still(monkeypatch: pytest.MonkeyPatch) -> None:
    frozen = time.time_ns()
    fake_clock(monkeypatch, lambda: frozen)
    values = [uuid7() for _ in range(10_000)]
    assert all(a < b for a, b in pairwise(values))
    # 12 bits of counter per millisecond: 10,000 ids need to borrow later milliseconds
    assert millis(values[-1]) > millis(values[0])


def test_order_holds_when_the_clock_steps_back(monkeypatch: pytest.MonkeyPatch) -> None:
    now = time.time_ns()
    steps = iter([now, now - 5_000_000_000, now - 5_000_000_000, now - 1_000_000])
    fake_clock(monkeypatch, lambda: next(steps))
    values = [uuid7() for _ in range(4)]
    assert all(a < b for a, b in pairwise(values))
    assert all(uuid.UUID(v).version == 7 for v in values)


def test_unique_across_threads() -> None:
    results: list[list[str]] = [[] for _ in range(4)]

    def work(out: list[str]) -> None:
        out.extend(uuid7() for _ in range(2_500))

    threads = [threading.Thread(target=work, args=(out,)) for out in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [v for out in results for v in out]
    assert len(set(everything)) == 10_000
    for out in results:
        assert all(a < b for a, b in pairwise(out))

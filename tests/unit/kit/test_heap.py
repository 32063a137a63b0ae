"""Garbage collection settings of a service process."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from tidings.kit import heap


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_gc")
def test_settle_freezes_what_survived_start_up_and_raises_the_young_threshold() -> None:
    _, middle, oldest = gc.get_threshold()
    survivor = {"kept": [1, 2, 3]}
    heap.settle()
    assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, middle, oldest)
    # what lived at start-up is out of the collector's sight: collections skip it
    assert gc.get_freeze_count() > 0
    assert not any(obj is survivor for obj in gc.get_objects())

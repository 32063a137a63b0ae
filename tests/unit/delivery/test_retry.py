"""Retry backoff: full jitter under a doubling, capped ceiling; Retry-After is a floor."""

from __future__ import annotations

import random

import pytest

from tidings.delivery.retry import backoff_seconds

SEEDS = range(200)


@pytest.mark.parametrize(
    ("attempt", "base", "cap", "ceiling"),
    [
        (0, 2.0, 900.0, 2.0),
        (1, 2.0, 900.0, 2.0),
        (2, 2.0, 900.0, 4.0),
        (3, 2.0, 900.0, 8.0),
        (8, 2.0, 900.0, 256.0),
        (9, 2.0, 900.0, 512.0),
        (10, 2.0, 900.0, 900.0),
        (100, 2.0, 900.0, 900.0),
        (4, 0.5, 3.0, 3.0),
        (3, 10.0, 1.0, 1.0),
    ],
)
def test_delay_is_full_jitter_under_the_ceiling(
    attempt: int, base: float, cap: float, ceiling: float
) -> None:
    delays = [
        backoff_seconds(attempt, base=base, cap=cap, rng=random.Random(seed)) for seed in SEEDS
    ]
    assert all(0 <= d <= ceiling for d in delays)
    # full jitter: the whole range is used, not just the top of it
    assert min(delays) < 0.1 * ceiling
    assert max(delays) > 0.9 * ceiling


def test_same_seed_same_delay() -> None:
    first = [backoff_seconds(n, base=2, cap=900, rng=random.Random(7)) for n in range(1, 9)]
    again = [backoff_seconds(n, base=2, cap=900, rng=random.Random(7)) for n in range(1, 9)]
    assert first == again


def test_default_rng_stays_in_range() -> None:
    for attempt in range(1, 12):
        assert 0 <= backoff_seconds(attempt, base=2, cap=900) <= min(900, 2 * 2 ** (attempt - 1))


@pytest.mark.parametrize(
    ("attempt", "retry_after", "low", "high"),
    [
        (1, 30.0, 30.0, 30.0),  # ceiling 2: Retry-After wins outright
        (3, 120.0, 120.0, 120.0),
        (8, 60.0, 60.0, 256.0),  # ceiling 256: jitter above the floor is kept
        (1, 5000.0, 900.0, 900.0),  # an absurd Retry-After is capped
        (20, 5000.0, 900.0, 900.0),
        (4, 0.0, 0.0, 16.0),
        (4, -5.0, 0.0, 16.0),
    ],
)
def test_retry_after_is_a_capped_floor(
    attempt: int, retry_after: float, low: float, high: float
) -> None:
    delays = [
        backoff_seconds(
            attempt, base=2.0, cap=900.0, retry_after=retry_after, rng=random.Random(seed)
        )
        for seed in SEEDS
    ]
    assert all(low <= d <= high for d in delays)

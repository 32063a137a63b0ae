"""Garbage collection tuned for a long-running service process."""

from __future__ import annotations

import gc

# The youngest generation is collected after this many new container objects (CPython's
# default is 700). A bulk or topic send builds tens of thousands of dicts that all live
# until its commit: with the default, one such request ran hundreds of collections, and a
# few of them walked every object of the process (a third of the request's time).
YOUNG_THRESHOLD = 20_000


def settle() -> None:
    """Call once the process has started: collect, move what survived (modules, the
    application) out of the collector's sight, and collect the youngest generation less
    often. In a parent about to fork, it also keeps those pages shared with the children."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, oldest)

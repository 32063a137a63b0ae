"""An aiosmtpd sink in a process of its own that only counts the messages it accepts."""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.sharedctypes import Synchronized
from typing import Any

from bench.harness import HOST, BenchError, free_port


class _Counting:
    def __init__(self, received: Synchronized[int]) -> None:
        self.received = received

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.received.get_lock():
            self.received.value += 1
        return "250 2.0.0 OK"


def _serve(port: int, received: Synchronized[int], stop: Any) -> None:
    from aiosmtpd.controller import Controller

    controller = Controller(_Counting(received), hostname=HOST, port=port)
    controller.start()
    try:
        stop.wait(3600)  # bounded: the runner stops the sink long before
    finally:
        controller.stop()


class SinkProcess:
    """Start with ``start()``; ``received`` counts accepted messages since the start."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._received: Synchronized[int] = context.Value("q", 0)  # type: ignore[assignment]
        self._stop = context.Event()
        self.port = free_port()
        self._proc = context.Process(
            target=_serve, args=(self.port, self._received, self._stop), daemon=True
        )

    @property
    def received(self) -> int:
        return int(self._received.value)

    def start(self, timeout: float = 20.0) -> SinkProcess:
        import smtplib

        self._proc.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with smtplib.SMTP(HOST, self.port, timeout=2) as probe:
                    probe.noop()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise BenchError(f"the SMTP sink did not start on port {self.port}")

    def stop(self) -> None:
        self._stop.set()
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5)

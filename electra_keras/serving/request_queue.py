"""Admission control shared by the REST and gRPC servers: a bounded request queue.

At most `max_concurrent` requests run at once and at most `max_queued` more
wait for a turn; a request beyond that is refused at once with UNAVAILABLE
(HTTP 503), the code TF Serving's batching queue answers when it is full,
instead of piling up threads or letting the kernel reset connections. The
queue also counts the requests in flight, so that a shutdown can refuse new
ones and wait for those already received (`drain`). Both servers also refuse
requests larger than `DEFAULT_MAX_REQUEST_BYTES` unless told otherwise.

    queue = RequestQueue(max_concurrent=8, max_queued=256)
    with queue.track():        # from the moment a request is received
        with queue.admit():    # a turn to run (or UNAVAILABLE)
            ...
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator

from electra_keras.serving.errors import ServingError

DEFAULT_MAX_QUEUED = 256
# Requests larger than this are refused (REST 413, gRPC RESOURCE_EXHAUSTED).
DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024


def default_max_concurrent() -> int:
    """TF Serving's default thread count: 4 per schedulable CPU."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return 4 * (cpus or os.cpu_count() or 1)


class RequestQueue:
    """Bounds how many requests run and wait; counts those in flight.

    Args:
        max_concurrent: requests that run at once (at least 1).
        max_queued: requests that may wait for a turn (0: none wait).
    """

    def __init__(
        self, max_concurrent: int | None = None, max_queued: int = DEFAULT_MAX_QUEUED
    ) -> None:
        max_concurrent = max_concurrent or default_max_concurrent()
        if max_concurrent < 1 or max_queued < 0:
            raise ValueError(
                f"max_concurrent must be >= 1 and max_queued >= 0, got "
                f"{max_concurrent} and {max_queued}."
            )
        self.max_concurrent = max_concurrent
        self.max_queued = max_queued
        self._turns = threading.Semaphore(max_concurrent)
        self._lock = threading.Condition()
        self._admitted = 0  # running + waiting
        self._in_flight = 0
        self._draining = False

    @property
    def capacity(self) -> int:
        """Requests admitted at most: running plus waiting."""
        return self.max_concurrent + self.max_queued

    @property
    def in_flight(self) -> int:
        """Requests received and not yet answered."""
        with self._lock:
            return self._in_flight

    @property
    def draining(self) -> bool:
        """True once `drain` has been called: new requests are refused."""
        return self._draining

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        """Counts one request in flight for as long as the block runs.

        Raises:
            ServingError: UNAVAILABLE once the server is draining.
        """
        with self._lock:
            if self._draining:
                raise ServingError("UNAVAILABLE", "The server is shutting down.")
            self._in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
                self._lock.notify_all()

    @contextlib.contextmanager
    def admit(self) -> Iterator[None]:
        """Waits for a turn to run (if there is room to wait) and holds it.

        Raises:
            ServingError: UNAVAILABLE when `capacity` requests are already
                running or waiting.
        """
        with self._lock:
            if self._admitted >= self.capacity:
                raise ServingError(
                    "UNAVAILABLE",
                    f"The request queue is full ({self.max_concurrent} running, "
                    f"{self.max_queued} waiting); retry later.",
                )
            self._admitted += 1
        try:
            with self._turns:
                yield
        finally:
            with self._lock:
                self._admitted -= 1

    def drain(self, timeout: float) -> bool:
        """Refuses new requests and waits for those in flight to finish.

        Args:
            timeout: seconds to wait at most.

        Returns:
            True when no request is left in flight.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            self._draining = True
            while self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return True

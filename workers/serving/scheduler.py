"""A small batching scheduler: concurrent requests (of different users) share one forward pass.

Requests put their rows (``n`` rows for ``n`` candidates) on a queue. The engine thread takes the
first waiting row, then keeps collecting rows until the batch holds ``max_batch`` rows or
``max_wait_ms`` have passed since that first row arrived, and generates the whole batch at once
with each row's own adapter (see ``workers.serving.runtime``). Rows of one request are kept
together when they fit. A batch runs to its end before the next one starts.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from workers.serving.engine import Engine, Row, RowEvent

log = logging.getLogger(__name__)


@dataclass
class BatchStats:
    batches: int = 0
    rows: int = 0
    largest: int = 0


class Scheduler:
    def __init__(self, engine: Engine, max_batch: int = 8, max_wait_ms: float = 10.0) -> None:
        self.engine = engine
        self.max_batch = max(1, max_batch)
        self.max_wait = max(0.0, max_wait_ms) / 1000.0
        self.stats = BatchStats()
        self._queue: queue.Queue[Row | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="attune-engine", daemon=True)
        self._running = True
        self._thread.start()

    def submit(self, rows: Sequence[Row]) -> None:
        """Queue ``rows``; their events go to each row's sink from the engine thread."""
        for row in rows:
            self._queue.put(row)

    def close(self) -> None:
        self._running = False
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _collect(self) -> list[Row]:
        first = self._queue.get()
        if first is None:
            return []
        batch = [first]
        deadline = time.monotonic() + self.max_wait
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                row = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            if row is None:
                self._running = False
                break
            batch.append(row)
        return [row for row in batch if not row.cancelled.is_set()]

    def _loop(self) -> None:
        while self._running:
            batch = self._collect()
            if not batch:
                continue
            self.stats.batches += 1
            self.stats.rows += len(batch)
            self.stats.largest = max(self.stats.largest, len(batch))
            try:
                self.engine.run(batch)
            except Exception as err:  # a failed batch fails its rows, never the engine
                log.exception("generation batch of %d rows failed", len(batch))
                for row in batch:
                    if not row.done and row.sink is not None:
                        row.finish_reason = "error"
                        row.sink(RowEvent("error", f"{type(err).__name__}: {err}"))

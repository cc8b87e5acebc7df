"""The scale benchmark's writes: Attune's rating create against a bare DRF create, and the
heaviest user's erasure while another user keeps rating."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from bench._scale_http import Caller, Row, Subject, timed
from bench._support import percentile


def rating_vs_bare(writer: Subject, n: int, on_row: Any) -> None:
    """Attune's ``POST /api/ratings`` and the bare create, alternating, on fresh interactions."""
    fresh = iter(writer.interactions)
    runs: dict[str, list[float]] = {"attune": [], "bare": []}
    rows = {
        k: Row("writes", f"POST {p} (new ratings)", "writer")
        for k, p in (("attune", "/api/ratings"), ("bare", "/bench/ratings (bare DRF)"))
    }
    lock = threading.Lock()
    for _ in range(2):
        for kind, path in (("attune", "/api/ratings"), ("bare", "/bench/ratings")):

            def make(i: int, c: Caller, path: str = path) -> tuple[str, str, dict]:
                with lock:
                    interaction = next(fresh)
                return "POST", path, {"json": {"interaction": interaction, "stars": 4}}

            before = len(rows[kind].latencies)
            began = time.perf_counter()
            timed(rows[kind], writer.caller, make, n // 2, 60.0)
            runs[kind].append((len(rows[kind].latencies) - before) / (time.perf_counter() - began))
    for kind, row in rows.items():
        row.extra["per_s"] = round(sum(runs[kind]) / len(runs[kind]), 1)
        on_row(row)
    ratio = rows["attune"].extra["per_s"] / max(rows["bare"].extra["per_s"], 1e-9)
    on_row(
        Row(
            "writes",
            "ratings / bare create throughput",
            "writer",
            target="ratio ≥ 0.9",
            extra={"ratio": round(ratio, 3), "met": ratio >= 0.9},
        )
    )


def erase_heaviest(heavy: Subject, writer: Subject, on_row: Any) -> None:
    """``DELETE /api/my-data`` of the heaviest user, once, while the writer rates."""
    stop = threading.Event()
    samples: list[tuple[float, float, int]] = []  # start, seconds, status

    def rate() -> None:
        i = 0
        while not stop.is_set():
            body = {
                "interaction": writer.interactions[i % len(writer.interactions)],
                "thumbs": "up" if i % 2 else "down",
            }
            began = time.perf_counter()
            status = writer.caller.send("POST", "/api/ratings", json=body).status_code
            samples.append((began, time.perf_counter() - began, status))
            i += 1

    thread = threading.Thread(target=rate)
    thread.start()
    time.sleep(3.0)
    began = time.perf_counter()
    answer = heavy.caller.send("DELETE", "/api/my-data", timeout=1800)
    took = time.perf_counter() - began
    time.sleep(1.0)
    stop.set()
    thread.join()
    during = [s for t, s, _ in samples if t + s >= began and t <= began + took]
    before = [s for t, s, _ in samples if t + s < began]
    deleted = answer.json().get("deleted", {}) if answer.status_code == 200 else {}
    on_row(
        Row(
            "delete",
            "DELETE /api/my-data (once)",
            "heaviest",
            latencies=[took],
            statuses=Counter({answer.status_code: 1}),
            target="< 10 s",
            extra={
                "met": answer.status_code == 200 and took < 10,
                "wall_s": round(took, 2),
                "rows_deleted": sum(deleted.values()),
            },
        )
    )
    row = Row(
        "delete",
        "POST /api/ratings during the delete",
        "writer",
        latencies=during,
        target="p99 < 50 ms",
        note=f"before it: p99 {percentile(before, 99) * 1000:.1f} ms over {len(before)}",
    )
    row.statuses.update(status for t, s, status in samples if t + s >= began)
    row.extra["met"] = bool(during) and row.p(99) < 50 and row.errors == 0
    on_row(row)

"""The soak benchmark's figures: requests by fault window, and the table it prints."""

from __future__ import annotations

from typing import Any

from bench._soak_load import Sample


def _window(faults: list[dict[str, Any]], name: str) -> tuple[float, float] | None:
    for fault in faults:
        if fault["fault"].startswith(name) and "window" in fault:
            return fault["window"][0], fault["window"][1]
    return None


def _inside(sample: Sample, window: tuple[float, float] | None) -> bool:
    """Whether the request overlapped the window (one in flight when the fault began counts)."""
    return window is not None and sample.at <= window[1] and sample.at + sample.seconds >= window[0]


def tally(samples: list[Sample], faults: list[dict[str, Any]]) -> dict[str, Any]:
    """Requests and 5xx outside and inside the fault windows; requests that got no answer
    (status 0) are counted apart."""
    database, serving = _window(faults, "database"), _window(faults, "serving")
    in_db = [s for s in samples if _inside(s, database)]
    in_serving = [s for s in samples if _inside(s, serving) and not _inside(s, database)]
    elsewhere = [s for s in samples if not _inside(s, database) and not _inside(s, serving)]

    def failed(group: list[Sample]) -> list[Sample]:
        return [s for s in group if s.status >= 500]

    db_failed = failed(in_db)
    return {
        "requests": len(samples),
        "by_status": _by_status(samples),
        "5xx_outside_faults": len(failed(elsewhere)),
        "5xx_outside_paths": sorted({f"{s.status} {s.path}" for s in failed(elsewhere)})[:10],
        "database_window": {
            "requests": len(in_db),
            "5xx": len(db_failed),
            "json_503_with_retry_after": sum(
                1 for s in db_failed if s.status == 503 and s.is_json and s.retry_after
            ),
        },
        "serving_window": {"requests": len(in_serving), "5xx": len(failed(in_serving))},
        "429": sum(1 for s in samples if s.status == 429),
        # no answer before the bench's own 60 s timeout, or the connection was refused/reset
        "no_answer_outside_faults": sum(1 for s in elsewhere if s.status == 0),
        "no_answer_paths": sorted({s.path for s in elsewhere if s.status == 0}),
    }


def _by_status(samples: list[Sample]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in samples:
        counts[str(s.status)] = counts.get(str(s.status), 0) + 1
    return dict(sorted(counts.items()))


def table(figures: dict[str, Any]) -> str:
    t, sat, jobs, writes = (
        figures["requests"],
        figures["saturation"],
        figures["jobs"],
        figures["writes"],
    )
    lines = [
        f"soak: {figures['minutes']:g} min of mixed load with faults",
        f"  requests                      {t['requests']}  (by status {t['by_status']})",
        f"  5xx outside the fault windows {t['5xx_outside_faults']}  (target 0) "
        f"{t['5xx_outside_paths']}",
        f"  database window               {t['database_window']['requests']} requests, "
        f"{t['database_window']['5xx']} 5xx, {t['database_window']['json_503_with_retry_after']} "
        "of them JSON 503 with Retry-After (target: all)",
        f"  serving restart window        {t['serving_window']['requests']} requests, "
        f"{t['serving_window']['5xx']} 5xx",
        f"  429 (fair use)                {t['429']}",
        f"  no answer in 60 s (client)    {t['no_answer_outside_faults']} outside the fault "
        f"windows {t['no_answer_paths']}",
        f"  fit jobs                      {jobs['submitted']} submitted, {jobs['completed_once']} "
        f"completed exactly once (target equal), {jobs['failed']} failed, "
        f"{jobs['still_open']} open",
        f"  acknowledged writes           {writes['acknowledged']} acknowledged, {writes['rows']} "
        "rows (target equal)",
        f"  /api/me while {sat['threads']} n=8 generations run  p50 {sat['me_p50_ms']} ms, "
        f"p99 {sat['me_p99_ms']} ms over {sat['me_requests']} requests (target p99 < 200 ms)",
    ]
    for fault in figures["faults"]:
        recovery = fault["recovery_seconds"]
        shown = "never (timeout)" if recovery is None else f"{recovery} s"
        line = f"  recovery: {fault['fault']:<24} {shown}  (target ≤ 30 s)"
        if "job_done_after" in fault:
            done = fault["job_done_after"]
            line += (
                f"; the fit it interrupted done {'never' if done is None else f'{done} s'} after"
            )
        lines.append(line)
    if jobs["errors"]:
        lines.append(f"  job errors: {jobs['errors']}")
    return "\n".join(lines)

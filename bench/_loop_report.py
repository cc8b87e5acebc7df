"""The loop benchmark's figures from the simulator's results, its table, plot and progress."""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bench._support import percentile

WINDOW = 20  # rounds in the first/last means
SMOOTH = 10  # rounds in the rolling mean of the recovery check
BEFORE = 30  # rounds before a change that give the steady state
RECOVERY_FACTOR = 1.5
RECOVERY_FLOOR = 1.0  # words: a steady state of ~0 would make any edit a "miss"
PAIRS_TO_FIT = 16


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def curve(people_costs: Sequence[Sequence[int | None]], rounds: int) -> list[float | None]:
    """Mean cost per round over the people (rounds that failed left out)."""
    return [
        _mean([c[r] for c in people_costs if r < len(c) and c[r] is not None])
        for r in range(rounds)
    ]


def recovery(
    people_costs: Sequence[Sequence[int | None]], at: int, rounds: int
) -> dict[str, Any] | None:
    """Rounds after a change at round ``at`` until the ``SMOOTH``-round mean cost of the people
    who changed is back within ``RECOVERY_FACTOR`` × their ``BEFORE`` rounds before it (at least
    ``RECOVERY_FLOOR`` words), with the curve around the change."""
    if not people_costs or at >= rounds:
        return None
    mean_curve = curve(people_costs, rounds)
    before = [c for c in mean_curve[max(0, at - BEFORE) : at] if c is not None]
    steady = _mean(before) or 0.0
    threshold = max(RECOVERY_FACTOR * steady, RECOVERY_FLOOR)
    recovered = None
    for r in range(at, rounds - SMOOTH + 1):
        window = [c for c in mean_curve[r : r + SMOOTH] if c is not None]
        if window and sum(window) / len(window) <= threshold:
            recovered = r - at
            break
    return {
        "at_round": at,
        "people": len(people_costs),
        "steady_before": round(steady, 2),
        "threshold": round(threshold, 2),
        "rounds_to_recover": recovered,
        "peak_after": round(max((c for c in mean_curve[at:] if c is not None), default=0.0), 2),
        "curve": [None if c is None else round(c, 2) for c in mean_curve[max(0, at - BEFORE) :]],
    }


def adapter_lags(records: Sequence[Mapping[str, Any]]) -> list[float]:
    """Per person, seconds from the round that gave their ``PAIRS_TO_FIT``-th preference pair
    (an edit that changed words, or a comparison with a winner) to the first answer an adapter
    shaped (its start: the round's end less the generation's latency)."""
    lags = []
    by_user: dict[str, list[Mapping[str, Any]]] = {}
    for row in records:
        by_user.setdefault(row["user"], []).append(row)
    for rows in by_user.values():
        rows.sort(key=lambda row: row["round"])
        pairs, fed_at = 0, None
        for row in rows:
            applied = row.get("layers_applied") or []
            if fed_at is not None and "adapter" in applied:
                started = row["time"] - (row.get("latency_ms") or 0.0) / 1000
                lags.append(max(0.0, started - fed_at))
                break
            kinds = [kind for kind, _ in row.get("acknowledged") or []]
            costs = row.get("costs") or []
            pairs += "edit" in kinds and bool(row.get("cost"))
            pairs += "comparison" in kinds and len(set(costs)) > 1
            if fed_at is None and pairs >= PAIRS_TO_FIT:
                fed_at = row["time"]
    return lags


def _ms(values: Sequence[float], q: int) -> float | None:
    return round(percentile(list(values), q), 1) if values else None


def _seconds(values: Sequence[float], q: int) -> float | None:
    return round(percentile(list(values), q), 2) if values else None


def config_figures(
    result: Any, lags: Sequence[float], rounds: int, changes: Mapping[str, int]
) -> dict[str, Any]:
    """One configuration's figures (``changes``: person id -> round of their first change)."""
    people = result.people
    totals = [sum(c for c in p.costs if c is not None) for p in people]
    costs = [p.costs for p in people]
    mean_curve = curve(costs, rounds)
    changed: dict[int, list[list[int | None]]] = {}
    for p in people:
        for pid, at in changes.items():
            if p.user == pid or p.user.endswith(f"-{pid}"):
                changed.setdefault(at, []).append(p.costs)
    latencies = [r["latency_ms"] for r in result.records if r.get("latency_ms") is not None]
    adapter = adapter_lags(result.records)
    return {
        "people": len(people),
        "rounds_failed": sum(1 for c in costs for x in c if x is None),
        "cumulative_mean": round(statistics.fmean(totals), 1) if totals else None,
        "cumulative_std": round(statistics.pstdev(totals), 1) if totals else None,
        "first20": _round(_mean([c for c in mean_curve[:WINDOW] if c is not None])),
        "last20": _round(_mean([c for c in mean_curve[-WINDOW:] if c is not None])),
        "curve": [_round(c) for c in mean_curve],
        "recovery": [recovery(group, at, rounds) for at, group in sorted(changed.items())],
        "memory_lag_p50_s": _seconds(lags, 50),
        "memory_lag_p99_s": _seconds(lags, 99),
        "memory_entries_timed": len(lags),
        "adapter_lag_p50_s": _seconds(adapter, 50),
        "adapter_lag_max_s": round(max(adapter), 1) if adapter else None,
        "adapters_served": len(adapter),
        "latency_p50_ms": _ms(latencies, 50),
        "latency_p99_ms": _ms(latencies, 99),
        "errors": sum(p.errors for p in people),
        "error_samples": [r["error"] for r in result.records if r.get("error")][:3],
        "server_errors": sum(p.server_errors for p in people),
        "waits": sum(p.waits for p in people),
        "seconds": round(result.seconds, 1),
    }


def _round(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 2)


def lag_by_minute(timed: Sequence[tuple[float, float]]) -> list[dict[str, Any]]:
    """Memory lag p50/p99 per minute of the run (by when the edit was committed)."""
    if not timed:
        return []
    start = min(t for t, _ in timed)
    minutes: dict[int, list[float]] = {}
    for t, lag in timed:
        minutes.setdefault(int((t - start) // 60), []).append(lag)
    return [
        {"minute": m, "edits": len(v), "p50_s": _seconds(v, 50), "p99_s": _seconds(v, 99)}
        for m, v in sorted(minutes.items())
    ]


def figures(
    results: Mapping[str, Any],
    timed_lags: Mapping[str, Sequence[tuple[float, float]]],
    rounds: int,
    seconds: float,
    changes: Mapping[str, int],
) -> dict[str, Any]:
    lags = {name: [lag for _, lag in timed] for name, timed in timed_lags.items()}
    per = {
        name: config_figures(result, lags.get(name, []), rounds, changes)
        for name, result in results.items()
    }
    base = per.get("base", {}).get("cumulative_mean")
    for fig in per.values():
        mean = fig["cumulative_mean"]
        fig["vs_base"] = round(mean / base, 3) if base and mean is not None else None
    all_lags = [lag for name, values in lags.items() if name in per for lag in values]
    return {
        "rounds": rounds,
        "seconds": round(seconds, 1),
        "configs": per,
        "memory_lag_p50_s": _seconds(all_lags, 50),
        "memory_lag_p99_s": _seconds(all_lags, 99),
        "memory_lag_by_minute": lag_by_minute(
            [x for name, t in timed_lags.items() if name in per for x in t]
        ),
        "targets": targets(per, all_lags),
    }


def targets(per: Mapping[str, Mapping[str, Any]], lags: Sequence[float]) -> dict[str, Any]:
    """Each target of the issue: met, missed, or not measured (the configuration not run)."""
    out: dict[str, Any] = {}
    everything = per.get("all")
    if everything and "base" in per:
        out["all_vs_base_le_0.15"] = (
            everything["vs_base"] is not None and everything["vs_base"] <= 0.15
        )
    singles = [f["cumulative_mean"] for n, f in per.items() if n not in ("all", "base")]
    if everything and singles:
        out["all_le_best_single"] = everything["cumulative_mean"] <= min(singles)
    recoveries = [r for f in per.values() for r in f["recovery"] if r]
    measured = [r for r in (everything or {}).get("recovery", []) if r]
    if measured:
        out["all_recovers_within_30"] = all(
            r["rounds_to_recover"] is not None and r["rounds_to_recover"] <= 30 for r in measured
        )
    out["recoveries_measured"] = len(recoveries)
    if lags:
        out["memory_lag_p50_le_2s"] = percentile(list(lags), 50) <= 2.0
        out["memory_lag_p99_le_10s"] = percentile(list(lags), 99) <= 10.0
    out["no_5xx"] = all(f["server_errors"] == 0 for f in per.values())
    return out


def table(figs: Mapping[str, Any]) -> str:
    lines = [
        f"bench loop: {figs['rounds']} rounds per person, {figs['seconds']:.0f} s",
        f"{'configuration':<16} {'cumulative':>16} {'×base':>6} {'first20':>8} {'last20':>7} "
        f"{'recover':>8} {'mem lag p50/p99 s':>18} {'adapter lag s':>14} {'p50/p99 ms':>14} "
        f"{'5xx':>4} {'err':>4}",
    ]
    for name, f in figs["configs"].items():
        rec = [r["rounds_to_recover"] for r in f["recovery"] if r]
        recover = ",".join("-" if r is None else str(r) for r in rec) or "n/a"
        lines.append(
            f"{name:<16} {f['cumulative_mean']:>9} ± {f['cumulative_std']:<5} "
            f"{_fmt(f['vs_base']):>6} {_fmt(f['first20']):>8} {_fmt(f['last20']):>7} "
            f"{recover:>8} {_fmt(f['memory_lag_p50_s']):>8} / {_fmt(f['memory_lag_p99_s']):<7} "
            f"{_fmt(f['adapter_lag_p50_s']):>14} "
            f"{_fmt(f['latency_p50_ms']):>6} / {_fmt(f['latency_p99_ms']):<5} "
            f"{f['server_errors']:>4} {f['errors']:>4}"
        )
    for name, f in figs["configs"].items():
        for message in f.get("error_samples") or ():  # what a failed round said (first 3)
            lines.append(f"  {name}: round failed: {message[:300]}")
    writes = figs.get("writes", {})
    if writes:
        lines.append(
            f"acknowledged writes {writes['acknowledged']}, stored {writes['stored']}; "
            f"fit jobs {writes['fit_jobs']}"
        )
    lines.append(
        f"memory lag (all): p50 {_fmt(figs['memory_lag_p50_s'])} s, "
        f"p99 {_fmt(figs['memory_lag_p99_s'])} s"
    )
    by_minute = figs.get("memory_lag_by_minute") or []
    if by_minute:
        lines.append(
            "memory lag p50 by minute: "
            + " ".join(f"{m['minute']}:{_fmt(m['p50_s'])}" for m in by_minute)
        )
    lines.append("targets: " + ", ".join(f"{k} {v}" for k, v in figs["targets"].items()))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    return "-" if value is None else str(value)


def plot(figs: Mapping[str, Any], path: Path) -> None:
    """Cost per round per configuration (a rolling ``SMOOTH``-round mean), changes marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    for name, f in figs["configs"].items():
        values = [math.nan if c is None else c for c in f["curve"]]
        smooth = [
            statistics.fmean([v for v in values[max(0, r - SMOOTH + 1) : r + 1] if v == v] or [0])
            for r in range(len(values))
        ]
        ax.plot(range(len(values)), smooth, label=f"{name} ({f['cumulative_mean']:.0f})")
    changes = {r["at_round"] for f in figs["configs"].values() for r in f["recovery"] if r}
    for at in changes:
        ax.axvline(at, color="grey", linestyle=":", label=f"a change of taste (round {at})")
    ax.set_xlabel("round")
    ax.set_ylabel(f"edit cost per round (words, {SMOOTH}-round mean)")
    ax.set_title("Attune through its API: edit cost per configuration (cumulative in legend)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def follow(
    records: Path, configs: Sequence[str], total: int, threads: Sequence[threading.Thread]
) -> None:
    """A progress bar over every configuration's person-rounds (their JSON Lines, counted)
    until the simulations end."""
    with tqdm(total=total, desc="loop rounds", unit="round") as bar:
        while any(t.is_alive() for t in threads):
            done = 0
            for name in configs:
                path = records / f"{name}.jsonl"
                if path.exists():
                    with path.open("rb") as handle:
                        done += sum(1 for _ in handle)
            bar.update(done - bar.n)
            time.sleep(2)
        for t in threads:
            t.join()

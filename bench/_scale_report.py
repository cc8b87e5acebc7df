"""The scale benchmark's table (grouped by area) and its JSON, with the fill and the machine."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from bench._scale_http import Row
from bench._support import percentile

AREAS = ("fill", "api", "export", "web", "console", "writes", "delete", "serving", "copl")


def figures(row: Row) -> dict[str, Any]:
    """A row as plain figures (milliseconds, counts, MB/s) for the table and the JSON."""
    found: dict[str, Any] = {
        "area": row.area,
        "name": row.name,
        "user": row.user,
        "n": len(row.latencies),
        "target": "-" if row.note.startswith("not measured") else row.target,
        "note": row.note,
        **row.extra,
    }
    if row.latencies:
        found |= {
            "p50_ms": round(row.p(50), 1),
            "p99_ms": round(row.p(99), 1),
            "statuses": {str(k): v for k, v in sorted(row.statuses.items())},
            "errors": row.errors,
        }
    if row.ttfb:
        found |= {
            "ttfb_p50_ms": round(percentile(row.ttfb, 50) * 1000, 1),
            "ttfb_p99_ms": round(percentile(row.ttfb, 99) * 1000, 1),
            "mb_per_s_median": round(percentile(row.mbps, 50), 1),
            "mb_per_s_min": round(min(row.mbps), 1),
            "body_mb_median": round(percentile(row.sizes, 50) / 1e6, 3),
            "rate_judged": row.rate_judged,
        }
    met = row.met()
    found["met"] = row.extra.get("met", met)
    return found


def _ms(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.1f}"


def _met(value: Any) -> str:
    return {True: "yes", False: "NO", None: "-"}.get(value, str(value))


def table(rows: list[dict[str, Any]], fill: dict[str, Any], machine: list[str]) -> str:
    lines = ["scale: machine", *("  " + m for m in machine), "", "fill: " + fill["summary"]]
    if "heaviest_memory_entries" in fill:
        lines.append(f"  the heaviest user's memory entries: {fill['heaviest_memory_entries']}")
    lines += [
        f"  {t:<34} {v['rows']:>9} rows  load {v['load_s']:>7.1f} s  indexes "
        f"{v['indexes_s']:>6.1f} s{v['slowest_index']}"
        for t, v in fill["tables"].items()
    ]
    head = f"  {'name':<54} {'user':<9} {'p50 ms':>8} {'p99 ms':>8} {'n':>5}  {'met?':<4} target"
    for area in AREAS[1:]:
        group = [r for r in rows if r["area"] == area]
        if not group:
            continue
        lines += ["", f"{area}:", head]
        for r in group:
            line = (
                f"  {r['name'][:54]:<54} {r['user'][:9]:<9} {_ms(r.get('p50_ms')):>8} "
                f"{_ms(r.get('p99_ms')):>8} {r['n']:>5}  {_met(r['met']):<4} {r['target']}"
            )
            details = []
            if "ttfb_p99_ms" in r:
                details.append(
                    f"first byte p50 {r['ttfb_p50_ms']} / p99 {r['ttfb_p99_ms']} ms, "
                    f"{r['mb_per_s_median']} MB/s (min {r['mb_per_s_min']}) over "
                    f"{r['body_mb_median']} MB"
                    + ("" if r["rate_judged"] else " (too small to judge a rate)")
                )
            if r.get("errors"):
                details.append(f"statuses {r['statuses']}")
            details += [
                f"{k} {r[k]}"
                for k in ("wall_s", "cpu_s", "peak_rss_mib", "ratio", "per_s", "bytes")
                if k in r
            ]
            if r["note"]:
                details.append(r["note"])
            lines.append(line + (f"\n      {'; '.join(details)}" if details else ""))
    measured = [r for r in rows if r["met"] is not None]
    missed = [r for r in measured if r["met"] is False]
    lines += [
        "",
        f"summary: {len(rows)} rows, {len(measured)} with a target, {len(missed)} "
        f"missed, {sum(1 for r in rows if r['note'].startswith('not measured'))} "
        "not measured (with the reason)",
    ]
    return "\n".join(lines)


def fill_summary(filler: Any, shape: Any, seconds: float) -> dict[str, Any]:
    """Rows and seconds per table, the shape's facts, and the whole fill's wall time."""
    tables = {}
    for table, took in filler.seconds.items():
        indexes = {k[6:-2]: v for k, v in took.items() if k.startswith("index ")}
        slowest = max(indexes.items(), key=lambda kv: kv[1]) if indexes else None
        tables[table] = {
            "rows": filler.rows[table],
            "load_s": took["load_s"],
            "indexes_s": took["indexes_s"],
            "indexes": indexes,
            "slowest_index": f" (slowest {slowest[0]} {slowest[1]:.1f} s)" if slowest else "",
        }
    heavy = int(shape.counts[shape.heaviest - 1])
    typical = int(shape.counts[shape.typical - 1])
    return {
        "seconds": round(seconds, 1),
        "users": shape.users,
        "interactions": shape.interactions,
        "heaviest": {"user_id": shape.heaviest, "interactions": heavy},
        "typical": {"user_id": shape.typical, "interactions": typical},
        "zipf_exponent": round(shape.exponent, 3),
        "tables": tables,
        "vacuum_analyze_checkpoint_s": filler.settle_s,
        "summary": f"{shape.users} users, {shape.interactions} interactions in {seconds:.0f} s "
        f"(VACUUM ANALYZE + CHECKPOINT {filler.settle_s:.0f} s of it; "
        f"Zipf s={shape.exponent:.3f}; heaviest user {shape.heaviest}: {heavy}, "
        f"typical user {shape.typical}: {typical})",
    }


def machine_facts(url: str) -> list[str]:
    from bench.feedback_writes import machine_facts as facts

    return facts(url)


def write_json(path: Path, rows: list[dict], fill: dict, machine: list[str], args: dict) -> None:
    import json

    load = os.getloadavg()
    path.write_text(
        json.dumps(
            {"args": args, "machine": machine, "load_average": load, "fill": fill, "rows": rows},
            indent=2,
            default=str,
        )
        + "\n"
    )

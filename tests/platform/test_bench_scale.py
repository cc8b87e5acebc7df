"""``./attune bench scale`` end to end at a tiny size: the fill matches what was asked, and the
table covers every operation of the OpenAPI schema and every web and console page (measured,
or listed with the reason)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench._scale_fill import plan, zipf_counts
from bench._scale_http import Row
from bench._scale_pages import url_names

ROOT = Path(__file__).resolve().parents[2]


def test_zipf_counts_add_up_with_the_heaviest_on_top():
    counts, exponent = zipf_counts(10_000, 1_000_000, 50_000)
    assert counts.sum() == 1_000_000 and counts.max() == 50_000 and counts.min() >= 1
    assert 0.5 < exponent < 1.5
    assert np.median(counts) < 100  # most people do little
    shape = plan(30, 600, seed=0)
    assert shape.counts.sum() == 600 and shape.counts[shape.heaviest - 1] == shape.counts.max()
    assert not shape.end_users[shape.heaviest - 1]
    with pytest.raises(ValueError):
        zipf_counts(10, 5, 1)


def test_an_export_rate_is_judged_only_on_a_body_big_enough_to_have_one():
    row = Row("export", "GET /api/my-data", "heaviest", min_mb_s=50.0)
    row.latencies, row.ttfb, row.mbps, row.sizes = [0.1], [0.05], [1.0], [5_000]
    assert row.met() is True  # 5 KB: a round trip, not a rate
    row.sizes = [5_000_000]
    assert row.met() is False  # 5 MB at 1 MB/s
    row.mbps = [60.0]
    assert row.met() is True
    row.ttfb = [0.3]
    assert row.met() is False  # the first byte came too late


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_tiny_run_fills_what_was_asked_and_covers_every_endpoint_and_page(tmp_path: Path):
    from attune.cli import python_env

    out = tmp_path / "scale.json"
    argv = ["--users", "30", "--interactions", "600", "--requests", "2", "--concurrency", "2"]
    skip = ["--skip-copl", "--skip-serving", "--no-progress", "--max-seconds", "5"]
    command = [sys.executable, "-m", "bench", "scale", *argv, *skip]
    env = python_env(DJANGO_SETTINGS_MODULE="attune.settings")
    done = subprocess.run([*command, "--json", str(out)], env=env, cwd=ROOT, text=True,
                          capture_output=True, timeout=280, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(out.read_text())
    counts = found["fill"]["counts"]
    assert counts["accounts.User"] == 30 and counts["feedback.Interaction"] == 600
    assert 0.15 * 600 < counts["feedback.Rating"] < 0.45 * 600
    assert 0 < counts["memory.MemoryEntry"] <= counts["feedback.Edit"]
    assert counts["collab.UserEmbedding"] == 30
    rows = found["rows"]
    figures = {"ratio", "wall_s", "p99_ms"}  # a row without requests of its own has these
    unexplained = [
        r for r in rows if not r["n"] and not figures & set(r) and "not measured" not in r["note"]
    ]
    assert not unexplained, unexplained
    listed = {(r["area"], r["name"]) for r in rows}
    api = {name for area, name in listed if area in {"api", "export"}}
    for method, path in schema_operations():
        assert f"{method} {path}" in api, f"{method} {path} is missing from the table"
    for area, pages in url_names().items():
        shown = {name.split(" ")[0] for a, name in listed if a == area}
        assert set(pages) <= shown, set(pages) - shown
    measured = [r for r in rows if r["area"] == "api" and r["n"]]
    assert len(measured) > 60, len(measured)
    reads = [r for r in measured if r["name"].startswith("GET")]
    assert all(r["errors"] == 0 for r in reads), [r for r in reads if r["errors"]]
    ratio = next(r for r in rows if r["name"] == "ratings / bare create throughput")
    assert ratio["ratio"] > 0
    delete = next(r for r in rows if r["name"] == "DELETE /api/my-data (once)")
    assert delete["statuses"] == {"200": 1} and delete["rows_deleted"] > 0
    assert "not measured" in done.stdout  # the table lists what it could not measure


def schema_operations() -> list[tuple[str, str]]:
    """Every (method, path) of Attune's OpenAPI schema, generated in-process (without the test
    suite's own example app)."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    methods = {"get", "post", "put", "patch", "delete"}
    return [
        (m.upper(), p)
        for p, ops in schema["paths"].items()
        for m in ops
        if m in methods and not p.startswith("/test-api")
    ]

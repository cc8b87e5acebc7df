"""The cluster benchmark's pure parts, and a tiny run of its cold loads on a local store."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench._cluster_loads import measure_loads
from bench._cluster_report import FitRun, Layout, fits_table, loads_table, ratios
from bench.cluster import main


def test_layouts_parse_and_read():
    assert Layout.parse("2x1") == Layout(2, 1)
    assert str(Layout.parse("1X2")) == "1 worker × 2 threads"
    for bad in ("2", "0x1", "axb"):
        with pytest.raises(ValueError):
            Layout.parse(bad)
    assert main(["--layouts", "2by1"]) == 2


def test_the_table_gives_fits_per_hour_and_the_ratios_of_two_workers_to_one():
    runs = [
        FitRun(Layout(1, 1), fits=8, seconds=80.0, fit_seconds=[10.0] * 8, per_worker={"a": 8},
               warmed=1),
        FitRun(Layout(1, 2), fits=8, seconds=64.0, fit_seconds=[8.0] * 8, per_worker={"a": 8},
               warmed=1),
        FitRun(Layout(2, 1), fits=8, seconds=42.0, fit_seconds=[10.5] * 8,
               per_worker={"a": 4, "b": 4}, warmed=2),
    ]  # fmt: skip
    assert runs[0].fits_per_hour == 360.0
    found = {what.split(" (")[0]: (ratio, target) for what, ratio, target in ratios(runs)}
    assert found == {
        "2x1 / 1x1": (pytest.approx(80 / 42), "≥ 1.8×"),
        "2x1 / 1x2": (pytest.approx(64 / 42), ""),
    }
    lines = fits_table(runs)
    assert "2 workers × 1 thread" in lines[3] and "4+4" in lines[3] and "686" in lines[3]
    assert any(line.startswith("ratio 2x1 / 1x1") and "1.90×" in line for line in lines)
    assert any(line.startswith("ratio 2x1 / 1x2") and "1.52×" in line for line in lines)


@pytest.mark.slow
def test_cold_loads_from_a_local_store(tmp_path: Path):
    figures = measure_loads("local", "local folder", loads=3, rank=8, work=tmp_path)
    assert len(figures.load_ms) == len(figures.fetch_ms) == len(figures.put_ms) == 3
    assert all(0 < f <= t for f, t in zip(figures.fetch_ms, figures.load_ms, strict=True))
    assert figures.adapter_bytes > 100_000  # rank 8 on every linear of the style model's shape
    assert "local folder" in loads_table([figures])[1]

"""``bench loop``'s report says what a failed round said, not only that it failed."""

from __future__ import annotations

from types import SimpleNamespace

from bench._loop_report import figures, table
from simulator.run import PersonResult


def _row(round_number: int, error: str | None) -> dict:
    return {"user": "p1", "round": round_number, "time": float(round_number), "error": error,
            "latency_ms": 10.0, "cost": None if error else 0}  # fmt: skip


def test_the_table_prints_the_first_messages_of_failed_rounds() -> None:
    person = PersonResult("p1", costs=[0, None, 0], errors=1)
    records = [_row(0, None), _row(1, "0: read timed out after 300 s"), _row(2, None)]
    result = SimpleNamespace(people=[person], records=records, seconds=3.0)
    figs = figures({"memory": result}, {"memory": []}, 3, 3.0, {})
    assert figs["configs"]["memory"]["error_samples"] == ["0: read timed out after 300 s"]
    assert "memory: round failed: 0: read timed out after 300 s" in table(figs)

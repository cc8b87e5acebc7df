"""``bench generation``'s ratios read the way their labels say."""

from __future__ import annotations

from bench.generation import ratios


def test_ratios_divide_the_times_by_the_reference() -> None:
    personalized = [(1.2, 1.1), (1.3, 1.2), (1.4, 1.3)]  # (wall, cpu) seconds of each run
    base = [(1.0, 1.0), (1.1, 1.0), (1.2, 1.1)]
    got = ratios(personalized, base)
    assert round(got["wall best"], 6) == 1.2  # personalized takes longer: above 1
    assert round(got["wall median"], 6) == round(1.3 / 1.1, 6)
    assert round(got["cpu best"], 6) == 1.1

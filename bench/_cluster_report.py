"""The cluster benchmark's figures: layouts, runs, ratios, tables, JSON, machine load."""

from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench._support import percentile

# --- figures and their table (pure) ---------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """``workers`` gpu-queue worker processes with ``threads`` torch threads each."""

    workers: int
    threads: int

    @classmethod
    def parse(cls, text: str) -> Layout:
        """``"2x1"``: 2 workers × 1 thread."""
        try:
            workers, threads = (int(part) for part in text.lower().split("x"))
        except ValueError as err:
            raise ValueError(f"a layout is WORKERSxTHREADS, e.g. 2x1, not {text!r}") from err
        if workers < 1 or threads < 1:
            raise ValueError(f"a layout needs ≥ 1 worker and ≥ 1 thread: {text!r}")
        return cls(workers, threads)

    @property
    def key(self) -> str:
        return f"{self.workers}x{self.threads}"

    def __str__(self) -> str:
        workers = "worker" if self.workers == 1 else "workers"
        threads = "thread" if self.threads == 1 else "threads"
        return f"{self.workers} {workers} × {self.threads} {threads}"


@dataclass
class FitRun:
    """One layout's run: its fits, wall time, and what each job took on its worker."""

    layout: Layout
    fits: int
    seconds: float
    fit_seconds: list[float] = field(default_factory=list)  # each job, started → finished
    per_worker: dict[str, int] = field(default_factory=dict)  # jobs each worker ran
    failed: list[str] = field(default_factory=list)
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)  # load average after the run
    warmed: int = 0  # workers that ran a warm-up fit before the clock started
    cpu_seconds: float = 0.0  # CPU the workers (and their pool processes) used in the run
    other_cores: float = 0.0  # cores busy with anything else meanwhile, on average

    @property
    def fits_per_hour(self) -> float:
        return (self.fits - len(self.failed)) * 3600 / self.seconds if self.seconds else 0.0


@dataclass
class LoadFigures:
    """Cold loads from one store: each load's and each fetch's milliseconds, and each put's."""

    store: str
    load_ms: list[float] = field(default_factory=list)
    fetch_ms: list[float] = field(default_factory=list)
    put_ms: list[float] = field(default_factory=list)
    adapter_bytes: int = 0


def best_runs(runs: list[FitRun]) -> dict[str, FitRun]:
    """Each layout's run with the most fits per hour (the least disturbed by other jobs)."""
    best: dict[str, FitRun] = {}
    for run in runs:
        if run.layout.key not in best or run.fits_per_hour > best[run.layout.key].fits_per_hour:
            best[run.layout.key] = run
    return best


def ratios(runs: list[FitRun]) -> list[tuple[str, float, str]]:
    """(what, fits/hour ratio, target) for 2 workers vs 1, where both layouts ran (each layout's
    best run when it ran more than once)."""
    by_key = best_runs(runs)
    found = []
    comparisons = [
        ("2x1", "1x1", "a second node of the same size", "≥ 1.8×"),
        ("2x1", "1x2", "the same 2 cores: 2 processes vs 2 threads", ""),
        ("2x2", "1x2", "a second node of the same size", "≥ 1.8×"),
    ]
    for new, old, what, target in comparisons:
        if new in by_key and old in by_key and by_key[old].fits_per_hour:
            ratio = by_key[new].fits_per_hour / by_key[old].fits_per_hour
            found.append((f"{new} / {old} ({what})", ratio, target))
    return found


def fits_table(runs: list[FitRun]) -> list[str]:
    lines = [
        f"{'layout':<22} {'fits':>4} {'wall s':>7} {'fits/hour':>9} {'s/fit p50':>9} "
        f"{'s/fit max':>9} {'CPU s/fit':>9}  {'jobs per worker':<16} others' cores"
    ]
    for run in runs:
        jobs = "+".join(str(n) for n in sorted(run.per_worker.values(), reverse=True)) or "?"
        failed = f"  {len(run.failed)} FAILED" if run.failed else ""
        cold = "" if run.warmed == run.layout.workers else f"  ({run.warmed} warmed)"
        lines.append(
            f"{run.layout!s:<22} {run.fits:>4} {run.seconds:>7.1f} {run.fits_per_hour:>9.0f} "
            f"{percentile(run.fit_seconds, 50):>9.1f} {max(run.fit_seconds, default=0.0):>9.1f} "
            f"{run.cpu_seconds / max(1, run.fits):>9.1f}  {jobs:<16} {run.other_cores:.2f}"
            f"{failed}{cold}"
        )
    repeated = len(runs) > len(best_runs(runs))
    for what, ratio, target in ratios(runs):
        lines.append(
            f"ratio {what}: {ratio:.2f}×"
            + (f" (target {target})" if target else "")
            + ("; best run of each layout" if repeated else "")
        )
    return lines


def loads_table(figures: list[LoadFigures]) -> list[str]:
    lines = [
        f"{'store':<24} {'n':>4} {'load p50':>9} {'load p99':>9} {'fetch p50':>9} "
        f"{'fetch p99':>9} {'put p50':>9}   (ms)"
    ]
    for f in figures:
        lines.append(
            f"{f.store:<24} {len(f.load_ms):>4} {percentile(f.load_ms, 50):>9.1f} "
            f"{percentile(f.load_ms, 99):>9.1f} {percentile(f.fetch_ms, 50):>9.1f} "
            f"{percentile(f.fetch_ms, 99):>9.1f} {percentile(f.put_ms, 50):>9.1f}"
        )
    return lines


def as_json(runs: list[FitRun], loads: list[LoadFigures], command: str) -> dict[str, Any]:
    return {
        "command": command,
        "fits": [
            {**asdict(run), "layout": run.layout.key, "fits_per_hour": run.fits_per_hour}
            for run in runs
        ],
        "best_fits_per_hour": {key: run.fits_per_hour for key, run in best_runs(runs).items()},
        "ratios": [{"what": w, "ratio": r, "target": t} for w, r, t in ratios(runs)],
        "loads": [
            {
                **asdict(f),
                "load_p50_ms": percentile(f.load_ms, 50),
                "load_p99_ms": percentile(f.load_ms, 99),
                "fetch_p50_ms": percentile(f.fetch_ms, 50),
                "fetch_p99_ms": percentile(f.fetch_ms, 99),
            }
            for f in loads
        ],
    }


def machine_busy_seconds() -> float:
    """CPU seconds all of this machine's cores have been busy since boot (``/proc/stat``)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # less idle, iowait


def tree_cpu_seconds(roots: list[int]) -> float:
    """CPU seconds used so far by ``roots`` and their children (a worker and its pool process)."""
    from bench._support import cpu_seconds, proc_stat

    pids = set(roots)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (f := proc_stat(int(entry.name))) and int(f[1]) in pids:
            pids.add(int(entry.name))
    return sum(cpu_seconds(sorted(pids)).values())


def machine_line() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        names = [ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text()
                 .splitlines() if ln.startswith("model name")]  # fmt: skip
        cpu = names[0] if names else cpu
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: {os.cpu_count()} CPU cores ({cpu}), {platform.system()} {platform.release()}, "
        f"python {platform.python_version()}; load average now: {load}"
    )


# --- stores ---------------------------------------------------------------------------------

"""Supervision for ``./attune run``: a child that dies is started again, with back-off.

Each child (web, worker, beat, serving) runs in a session of its own, so the terminal's Ctrl-C
reaches only the supervisor, which then stops the children in order. A child that exits, with any
code or killed by a signal, is started again after a delay that doubles from ``first`` to
``longest`` and starts over once the child had stayed up ``reset_after`` seconds: a crash loop
costs little, and a part that crashes once a day comes back at once. What is left of a dead
child's process group (a killed Celery main's pool processes, a killed gunicorn master's workers
still holding the port) is killed before it starts again.

The embedded database is watched the same way when this run started it (it owns it): if its
server stops, it is started again on the same data folder (same socket, same URL).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

STOP_GRACE_SECONDS = 20


def say(message: str) -> None:
    """A supervision event, on stderr (where an operator and a log collector look)."""
    print(f"attune: {message}", file=sys.stderr, flush=True)


@dataclass
class Backoff:
    """Delays between restarts: ``first``, doubling up to ``longest``; back to ``first`` when
    the process had run at least ``reset_after`` seconds before it died."""

    first: float = 1.0
    longest: float = 30.0
    reset_after: float = 60.0
    _next: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._next = self.first

    def delay(self, uptime: float) -> float:
        """The delay before the next start of a process that ran ``uptime`` seconds."""
        if uptime >= self.reset_after:
            self._next = self.first
        delay = self._next
        self._next = min(self._next * 2, self.longest)
        return delay


def describe_exit(returncode: int) -> str:
    """``exit code 3`` or ``killed by SIGKILL``, from a Popen return code."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


@dataclass
class Child:
    """One supervised command: started, watched, restarted after a delay when it exits."""

    name: str
    command: list[str]
    env: dict[str, str]
    cwd: Path
    backoff: Backoff = field(default_factory=Backoff)
    proc: subprocess.Popen | None = field(default=None, init=False)
    started_at: float = field(default=0.0, init=False)
    restart_at: float | None = field(default=None, init=False)
    restarts: int = field(default=0, init=False)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self) -> None:
        # Own session: Ctrl-C in the terminal reaches the supervisor only; the pid is the group id.
        self.proc = subprocess.Popen(
            self.command, cwd=self.cwd, env=self.env, start_new_session=True
        )
        self.started_at = time.monotonic()
        self.restart_at = None

    def check(self, now: float) -> None:
        """Notice an exit (and schedule the restart), or restart when the delay has passed."""
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.restarts += 1
                try:
                    self.start()
                except OSError as err:  # e.g. its program was removed: try again later
                    self.restart_at = now + self.backoff.delay(0)
                    say(f"{self.name} could not start ({err}); trying again later")
                    return
                say(f"{self.name} started again (pid {self.pid}, restart {self.restarts})")
            return
        if self.proc is None or self.proc.poll() is None:
            return
        self._kill_leftovers()
        delay = self.backoff.delay(now - self.started_at)
        self.restart_at = now + delay
        say(f"{self.name} (pid {self.proc.pid}) {describe_exit(self.proc.returncode)}; "
            f"restarting it in {delay:g}s")  # fmt: skip

    def restart_now(self) -> None:
        """Stop the running process so that it is started again (e.g. with a new env)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()

    def _kill_leftovers(self) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def signal_stop(self) -> None:
        self.restart_at = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait_stopped(self, deadline: float) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{self.name} did not stop in {STOP_GRACE_SECONDS}s; killing it")
            self.proc.kill()
            self.proc.wait()
        self._kill_leftovers()


@dataclass
class Watched:
    """A resource checked now and then and started again when it is down (the database)."""

    name: str
    is_up: Callable[[], bool]
    start: Callable[[], None]
    every: float = 2.0
    backoff: Backoff = field(default_factory=Backoff)
    next_check: float = field(default=0.0, init=False)
    up_since: float = field(default_factory=time.monotonic, init=False)

    def check(self, now: float) -> bool:
        """Whether it was started again just now."""
        if now < self.next_check:
            return False
        self.next_check = now + self.every
        if self.is_up():
            return False
        say(f"the {self.name} is down; starting it again")
        try:
            self.start()
        except Exception as err:  # e.g. its old processes still hold the shared memory
            delay = self.backoff.delay(now - self.up_since)
            self.next_check = now + delay
            first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
            say(f"the {self.name} did not start ({first_line}); trying again in {delay:g}s")
            return False
        self.up_since = time.monotonic()
        say(f"the {self.name} is up again")
        return True


class Supervisor:
    """Keeps the children (and watched resources) running until :meth:`stop`."""

    def __init__(self, children: list[Child], watched: list[Watched] | None = None) -> None:
        self.children = children
        self.watched = watched or []

    def start(self) -> None:
        for child in self.children:
            child.start()

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for resource in self.watched:
            resource.check(now)
        for child in self.children:
            child.check(now)

    def run_forever(self, interval: float = 0.5) -> NoReturn:
        """Supervise until interrupted (the caller's signal handler raises)."""
        while True:
            self.tick()
            time.sleep(interval)

    def stop(self) -> None:
        """SIGTERM to every child, then wait for each (SIGKILL after the grace period)."""
        for child in self.children:
            child.signal_stop()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in self.children:
            child.wait_stopped(deadline)

"""``./attune run`` keeps its parts running: a part that dies (or the embedded database) is
started again with back-off while the rest go on; only Ctrl-C stops everything."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from attune import cli, embedded_db
from attune.supervisor import Backoff, Child, Supervisor
from core import config
from tests.support.processes import ROOT, free_port, project_env
from tests.support.style_models import build_tiny_style_model


def test_backoff_doubles_to_its_ceiling_and_starts_over_after_a_long_run():
    backoff = Backoff(first=1, longest=30, reset_after=60)
    assert [backoff.delay(uptime=2) for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert backoff.delay(uptime=59) == 30  # a short run keeps the long delay
    assert backoff.delay(uptime=60) == 1  # it stayed up a minute: the next crash is new
    assert backoff.delay(uptime=5) == 2


def supervise(supervisor: Supervisor, until: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "the supervisor did not get there in time"
        supervisor.tick()
        time.sleep(0.02)


def test_a_child_is_restarted_whatever_its_exit_and_its_leftovers_are_killed(tmp_path, capsys):
    leftover = tmp_path / "leftover.pid"
    # A process that leaves a grandchild in its group (as a killed gunicorn master leaves
    # workers on the port), then exits with code 3.
    script = f"sleep 300 & echo $! > {leftover}; exit 3"

    def fast() -> Backoff:
        return Backoff(first=0.05, longest=0.2, reset_after=60)

    child = Child("flaky", ["sh", "-c", script], dict(os.environ), tmp_path, backoff=fast())
    sleeper = Child("steady", ["sleep", "300"], dict(os.environ), tmp_path, backoff=fast())
    supervisor = Supervisor([child, sleeper])
    supervisor.start()
    try:
        supervise(supervisor, lambda: child.restarts >= 4)
        first_sleeper = sleeper.pid
        assert first_sleeper is not None
        os.kill(first_sleeper, signal.SIGKILL)
        supervise(supervisor, lambda: sleeper.restarts == 1)
        assert sleeper.pid != first_sleeper
    finally:
        supervisor.stop()
    err = capsys.readouterr().err
    delays = [line.rsplit(" ", 1)[1] for line in err.splitlines() if "flaky (pid" in line]
    assert delays[:4] == ["0.05s", "0.1s", "0.2s", "0.2s"], err
    assert "exit code 3; restarting it in" in err
    assert f"steady (pid {first_sleeper}) killed by SIGKILL; restarting it in 0.05s" in err
    grandchild = int(leftover.read_text())
    assert not alive(grandchild)  # killed with its dead parent's group, before the restart
    assert sleeper.proc is not None and sleeper.proc.returncode == -signal.SIGTERM  # stopped


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_run_options_choose_the_parts():
    def parts(*argv: str) -> list[str]:
        return cli.run_parts(cli.parser().parse_args(["run", *argv]))

    assert parts() == ["web", "worker", "gpu-worker", "beat", "serving"]
    assert parts("--no-beat", "--no-serving") == ["web", "worker", "gpu-worker"]
    assert parts("--no-gpu-worker", "--no-serving") == ["web", "worker", "beat"]
    assert parts("--only", "worker,beat") == ["worker", "beat"]
    assert parts("--no-worker") == ["web", "beat", "serving"]  # no Celery worker at all
    assert parts("--only", "web,worker", "--no-worker") == ["web"]
    with pytest.raises(SystemExit):
        parts("--only", "web,workers")


# --- the real platform ---------------------------------------------------------------------


def part_pids(runner: subprocess.Popen) -> dict[str, int]:
    """The runner's children by part, from their command lines."""
    names = [(" -Q gpu ", "gpu-worker"), ("gunicorn", "web"), (" worker ", "worker"),
             (" beat ", "beat"), ("workers.serving", "serving")]  # fmt: skip
    found = {}
    for child in psutil.Process(runner.pid).children():
        try:
            with_spaces = f" {' '.join(child.cmdline())} "
        except psutil.Error:  # a dead child the runner has not reaped yet
            continue
        part = next((part for key, part in names if key in with_spaces), None)
        if part is not None:
            found[part] = child.pid
    return found


def postmaster_pid(var: Path) -> int | None:
    pidfile = var / "pgdata" / "postmaster.pid"
    return int(pidfile.read_text().split()[0]) if pidfile.exists() else None


def heartbeat_pids(var: Path) -> set[int]:
    import psycopg

    uri = embedded_db.running_uri(var / "pgdata")
    if uri is None:
        return set()
    with psycopg.connect(uri, connect_timeout=3) as conn:
        return {row[0] for row in conn.execute("SELECT pid FROM health_workerheartbeat")}


def answers(url: str) -> int | None:
    """The HTTP status ``url`` answers with, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return None


class Platform:
    def __init__(self, runner: subprocess.Popen, var: Path, port: int, serving_port: int) -> None:
        self.runner, self.var = runner, var
        self.health = f"http://127.0.0.1:{port}/healthz"
        self.serving_health = f"http://127.0.0.1:{serving_port}/healthz"
        self.stderr = var / "run.err"

    def wait(
        self, what: str, check: Callable[[], bool], timeout: float = 90, web_up: bool = True
    ) -> None:
        """Wait for ``check``; the web answers all along (it never stops) once it is up."""
        deadline = time.monotonic() + timeout
        while not check():
            assert self.runner.poll() is None, self.stderr.read_text()[-3000:]
            assert not web_up or answers(self.health) is not None, "the web stopped answering"
            assert time.monotonic() < deadline, f"{what}: {self.stderr.read_text()[-3000:]}"
            time.sleep(0.3)


@pytest.fixture
def scratch_var() -> Iterator[Path]:
    """A var dir outside pytest's temporary folder, which a new pytest session makes private
    again (the embedded server runs as another user when we are root, and must reach it)."""
    with tempfile.TemporaryDirectory(dir=config.var_dir(), prefix="supervision-") as folder:
        yield Path(folder)


@pytest.fixture
def platform(scratch_var: Path) -> Iterator[Platform]:
    """``./attune run`` on a scratch var dir (its own embedded database, the tiny model)."""
    var = scratch_var
    build_tiny_style_model(var)
    port, serving_port = free_port(), free_port()
    env = project_env(
        ATTUNE_VAR_DIR=str(var), ATTUNE_SERVING_PORT=str(serving_port),
        ATTUNE_WEB_WORKERS="1", ATTUNE_WORKER_CONCURRENCY="1",
    )  # fmt: skip
    for name in ("DATABASE_URL", "ATTUNE_BASE_MODEL", "ATTUNE_SERVING_URL", "ATTUNE_SERVING_URLS"):
        env.pop(name, None)
    with (var / "run.out").open("w") as out, (var / "run.err").open("w") as err:
        runner = subprocess.Popen(
            [sys.executable, "-m", "attune.cli", "run", "--port", str(port)],
            cwd=ROOT, env=env, stdout=out, stderr=err,
        )  # fmt: skip
    platform = Platform(runner, var, port, serving_port)
    try:
        platform.wait("start-up", lambda: answers(platform.health) == 200, 180, web_up=False)
        yield platform
    finally:
        if runner.poll() is None:  # the test failed half-way: leave nothing behind
            leftovers = part_pids(runner).values()
            runner.kill()
            runner.wait()
            for pid in leftovers:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
            embedded_db.stop(var / "pgdata")


@pytest.mark.slow
def test_a_killed_part_comes_back_and_only_ctrl_c_stops_everything(platform: Platform):
    parts = part_pids(platform.runner)
    assert set(parts) == {"web", "worker", "gpu-worker", "beat", "serving"}
    database = postmaster_pid(platform.var)
    platform.wait("the first worker's heartbeat", lambda: parts["worker"] in heartbeat_pids(
        platform.var))  # fmt: skip

    for part in ("worker", "serving", "beat"):  # each its process group leader, as a crash would
        os.kill(parts[part], signal.SIGKILL)
    restarted: dict[str, int] = {}

    def back() -> bool:
        now = part_pids(platform.runner)
        restarted.update({p: now[p] for p in ("worker", "serving", "beat") if p in now})
        return len(restarted) == 3 and all(restarted[p] != parts[p] for p in restarted)

    platform.wait("the parts started again", back)
    platform.wait("the new worker consumes", lambda: restarted["worker"] in heartbeat_pids(
        platform.var))  # fmt: skip
    platform.wait("the serving port answers", lambda: answers(platform.serving_health) == 200)
    assert part_pids(platform.runner)["web"] == parts["web"]  # the web never stopped
    assert postmaster_pid(platform.var) == database  # nor the database
    log = platform.stderr.read_text()
    events = "\n".join(line for line in log.splitlines() if line.startswith("attune:"))
    for part in ("worker", "serving", "beat"):  # 1s, or longer if that part had died before
        assert re.search(rf"{part} \(pid {parts[part]}\) killed by SIGKILL; restarting it in \d+s",
                         events), events  # fmt: skip

    os.kill(database, signal.SIGKILL)  # the embedded database dies: it is started again
    platform.wait("the database is back", lambda: postmaster_pid(platform.var) != database
                  and embedded_db.running_uri(platform.var / "pgdata") is not None)  # fmt: skip
    platform.wait("the web reaches the database again", lambda: answers(platform.health) == 200)
    assert "the embedded database is up again" in platform.stderr.read_text()

    running = part_pids(platform.runner)
    platform.runner.send_signal(signal.SIGINT)  # Ctrl-C
    assert platform.runner.wait(timeout=60) == 0
    assert not any(alive(pid) for pid in running.values())
    assert embedded_db.running_uri(platform.var / "pgdata") is None

"""A scratch Attune for benchmarks: its own embedded PostgreSQL and ``./attune run`` on it.

The bench owns the database server (so it can stop it) and runs ``./attune run`` on it as one
child process, with its own var dir and ports; the platform's parts are found among that
process's children by command line.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

from bench._soak_load import Client

ROOT = Path(__file__).resolve().parents[1]


class Database:
    """An embedded PostgreSQL server in a folder of the bench's own."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self.url = ""

    def start(self) -> str:
        from attune import embedded_db

        self.url, _ = embedded_db.start(self.pgdata)
        return self.url

    def stop(self) -> None:
        from attune import embedded_db

        if self.pgdata.exists():
            embedded_db.stop(self.pgdata)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Platform:
    """``./attune run`` on the scratch database, with its own var dir and ports."""

    def __init__(self, var: Path, database_url: str, health_token: str) -> None:
        self.var, self.database_url, self.health_token = var, database_url, health_token
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, log: Path, **settings: str) -> None:
        """Start it, logging to ``log``; ``settings`` are extra environment variables."""
        from attune.cli import python_env

        env = python_env(
            ATTUNE_VAR_DIR=str(self.var),
            DATABASE_URL=self.database_url,
            ATTUNE_SERVING_PORT=str(free_port()),
            ATTUNE_HEALTH_TOKEN=self.health_token,
            **settings,
        )
        env.pop("CELERY_BROKER_URL", None)  # the broker is the scratch database
        for own in ("ATTUNE_ARTIFACT_STORE", "ATTUNE_ARTIFACT_CACHE_DIR", "ATTUNE_ADAPTER_ROOT"):
            env.pop(own, None)
        command = [sys.executable, "-m", "attune.cli", "run", "--port", str(self.port)]
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=out, start_new_session=True
            )

    def wait_ready(self, timeout: float) -> None:
        """Until the web answers, the health check is ok and a generation is answered."""
        deadline = time.monotonic() + timeout
        headers = {"Authorization": f"Bearer {self.health_token}"}
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError("./attune run exited while starting (see platform.log)")
            with contextlib.suppress(requests.RequestException):
                if Client(self.base_url, timeout=10).get("/healthz", headers=headers).ok:
                    return
            time.sleep(1)
        raise RuntimeError(f"the platform was not healthy within {timeout:.0f} s")

    def part(self, needle: str) -> int:
        """The pid of the runner's child whose command line contains ``needle``."""
        assert self.proc is not None
        for pid in children(self.proc.pid):
            if needle in cmdline(pid):
                return pid
        raise RuntimeError(f"no running part matches {needle!r}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(stat[1]) == parent:
                found.append(int(entry.name))
    return found


def prepare_model(var: Path, mode: str) -> str:
    """The built-in model for the platform: this machine's built one, or a small one."""
    from core import config
    from workers.modeling.style_lm import StyleLMConfig, ensure_style_lm, is_built, style_lm_dir

    built = style_lm_dir(config.var_dir())
    if mode in ("auto", "built") and is_built(built):
        shutil.copytree(built, style_lm_dir(var))
        return f"built ({built})"
    if mode == "built":
        raise SystemExit(f"no built model at {built}; run with --model small")
    small = StyleLMConfig(hidden_size=64, num_heads=2, intermediate_size=128, vocab_size=800,
                          steps=40, tokenizer_examples=300, prose_paragraphs=200)  # fmt: skip
    ensure_style_lm(small, var=var, progress=False)
    return "small (built in this run)"


@dataclass(frozen=True)
class Scratch:
    """A running scratch Attune: its database server, its URL and the platform on it."""

    db: Database
    url: str
    platform: Platform


@contextlib.contextmanager
def scratch_platform(
    work: Path, model: str, name: str, keep: bool, timeout: float, **settings: str
) -> Iterator[Scratch]:
    """A scratch database and ``./attune run`` on it, in ``work``, ready (healthy within
    ``timeout``; ``settings`` are extra environment variables); on the way out the platform and
    the database are stopped and ``work`` is removed unless ``keep``, also when the bench is
    sent SIGTERM (it then exits with status 143)."""
    db, platform = Database(work / "db" / "pgdata"), None
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        url = db.start()
        print(f"{name}: model {prepare_model(work / 'platform', model)}", flush=True)
        platform = Platform(work / "platform", url, health_token=secrets.token_urlsafe(16))
        platform.start(work / "platform.log", **settings)
        platform.wait_ready(timeout=timeout)
        yield Scratch(db, url, platform)
    finally:
        if platform is not None:
            platform.stop()
        db.stop()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)

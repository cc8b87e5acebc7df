"""``./attune demo``: ``./attune run``, then filled by simulated people, so that a newcomer finds
every page with real data (learned preferences, an adapter, a slider, a CoPL version, plots).

The platform is ``./attune run`` itself, a child process (its own session: Ctrl-C here stops it
in order, as Ctrl-C stops ``./attune run``). Its output goes to ``var/demo-platform.log``; only
its own lines (``attune: …``, the demo logins of a first run) are shown here, so that the fill's
steps and progress bar stay readable among the web's access log and the workers' logs.

When ``/healthz`` says the platform is up (while the serving process prepares its model the
progress is shown: a first build of the built-in model takes about 11 minutes on 2 cores), this
process sets Django up on the platform's database and fills it (:mod:`attune.demo_fill`); an
install that was filled before is not filled again unless ``--refill``. Then it prints where to
look and keeps running until Ctrl-C.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import requests

from attune.demo_fill import APP_NAME, DIMENSION, Filled, FillOptions, fill
from attune.runner import Stop, ignore_signals, stop_on_signals

ROOT = Path(__file__).resolve().parents[2]
LOGIN_LINE = re.compile(r"^\s+(staff|user)\s+(\S+) / (\S+)\s+API token: (\S+)\s*$")
HEALTH_POLL_S = 2.0
PROGRESS_EVERY_S = 15.0  # a model build's progress, at most this often
ERROR_PATIENCE_S = 300.0  # how long the platform may stay unhealthy (not loading) before giving up


def say(message: str) -> None:
    print(f"attune demo: {message}", flush=True)


class Platform:
    """``python -m attune.cli run`` as a child; its output to ``log``, its own lines echoed,
    the demo logins it prints on a first run kept."""

    def __init__(self, host: str, port: int, env: dict[str, str], log: Path) -> None:
        self.command = [sys.executable, "-m", "attune.cli", "run", "--host", host,
                        "--port", str(port)]  # fmt: skip
        self.env, self.log = env, log
        self.logins: list[tuple[str, str, str, str]] = []  # (role, username, password, token)
        self.proc: subprocess.Popen | None = None
        self.reader: threading.Thread | None = None

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            self.command, cwd=ROOT, env=self.env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        self.reader = threading.Thread(
            target=self._read, args=(self.proc.stdout,), name="platform-output", daemon=True
        )
        self.reader.start()

    def _read(self, stream: IO[bytes]) -> None:
        with self.log.open("ab") as log:
            for raw in stream:
                log.write(raw)
                log.flush()
                line = raw.decode(errors="replace").rstrip("\n")
                if found := LOGIN_LINE.match(line):
                    self.logins.append(found.groups())  # type: ignore[arg-type]
                if line.startswith("attune:") or found or line.startswith("Demo logins"):
                    print(line, flush=True)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait(self) -> int:
        assert self.proc is not None
        return self.proc.wait()

    def stop(self) -> None:
        """SIGTERM, as Ctrl-C on ``./attune run``: it stops its parts, then the database."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.reader is not None:
            self.reader.join(timeout=5)


def health(url: str, token: str) -> tuple[str, str]:
    """(status, what to show): ``ok``/``degraded``, ``loading`` with the model's progress,
    ``error`` with the failing checks, or ``down`` when nothing answers yet."""
    from core.serving import describe_progress

    try:
        answer = requests.get(
            f"{url}/healthz", headers={"Authorization": f"Bearer {token}"}, timeout=15
        )
        body = answer.json()
    except (requests.RequestException, ValueError):
        return "down", "the web server is starting"
    status = str(body.get("status"))
    if status == "loading":
        replicas = (body.get("serving") or {}).get("replicas") or []
        progress = [r["loading"] for r in replicas if isinstance(r.get("loading"), dict)]
        return status, "serving: " + (describe_progress(progress[0]) if progress else "loading")
    checks = body.get("checks") or {}
    failing = [f"{name}: {c.get('error')}" for name, c in checks.items() if not c.get("ok")]
    if status == "error" and not failing:
        failing = [str((body.get("serving") or {}).get("error") or "serving is down")]
    return status, "; ".join(failing)


def wait_healthy(url: str, token: str, platform: Platform) -> bool:
    """Until ``/healthz`` answers ok (or degraded); False when the platform exited or stayed
    in error (not loading) for ``ERROR_PATIENCE_S``."""
    shown, shown_at, error_since = "", 0.0, None
    while platform.alive():
        status, text = health(url, token)
        if status in ("ok", "degraded"):
            return True
        now = time.monotonic()
        error_since = (error_since or now) if status == "error" else None
        if error_since is not None and now - error_since > ERROR_PATIENCE_S:
            say(f"the platform is not healthy ({text}); not filling it")
            return False
        stage = text.split(" (")[0]
        if text != shown and (stage != shown.split(" (")[0] or now - shown_at > PROGRESS_EVERY_S):
            say(f"waiting for the platform: {text}")
            shown, shown_at = text, now
        time.sleep(HEALTH_POLL_S)
    return False


def setup_django(env: dict[str, str]) -> None:
    """Django in this process, on the platform's database (the embedded one: its running URL)."""
    from attune import embedded_db

    url = env.get("DATABASE_URL") or embedded_db.running_uri()
    if not url:
        raise RuntimeError("the platform's database is not running")
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "attune.settings")
    import logging

    import django

    django.setup()
    logging.getLogger().setLevel(logging.WARNING)  # this process's own lines are its prints


def logins_text(platform: Platform, filled: Filled | None) -> list[str]:
    shown = [(role, name, password) for role, name, password, _ in platform.logins]
    if filled is not None:
        made = filled.created_logins
        shown += [("staff" if x.is_staff else "user", x.username, x.password) for x in made]
    if shown:
        return [f"  {role:<5}  {name} / {password}" for role, name, password in shown]
    return [
        "  staff  admin, user  demo: their passwords were printed on the first run",
        "  (lost one? ./attune manage changepassword demo, or admin)",
    ]


def summary(url: str, platform: Platform, filled: Filled | None, log: Path) -> str:
    lines = ["", f"Attune is running at {url}/ (Ctrl-C stops it; its log: {log})", "Logins:"]
    lines += logins_text(platform, filled)
    lines += [
        "Look at, as demo:",
        f'  {url}/me        "What Attune learned": preferences learned from demo\'s edits, the '
        f"{DIMENSION} slider, the layers' choice and evidence",
        f"  {url}/history   demo's texts, rated and edited; /ask to try the personalized model",
        "as admin:",
        f"  {url}/console/        the simulated people and demo: memory, adapters, CoPL map",
        f"  {url}/console/jobs    the adapter fits, the preference vector and the CoPL run",
        f"  {url}/console/plots   edit cost per round, falling as Attune learns",
        f"  {url}/api/docs/       the API; {url}/healthz",
    ]
    if filled is not None and filled.app_key:
        lines.append(
            f"Client app {APP_NAME!r}: key {filled.app_key} (in var/demo.json); more rounds: "
            f"./attune simulate --url {url} --key {filled.app_key} --user-prefix more-"
        )
    return "\n".join(lines)


def run_demo(host: str, port: int, options: FillOptions) -> int:
    """``./attune demo``: the platform, filled (unless filled before), until Ctrl-C."""
    from attune.cli import python_env
    from core.config import var_dir

    env = python_env(PYTHONUNBUFFERED="1")
    token = env.get("ATTUNE_HEALTH_TOKEN") or secrets.token_urlsafe(24)
    env["ATTUNE_HEALTH_TOKEN"] = token  # lets this process read /healthz's details
    os.environ["ATTUNE_HEALTH_TOKEN"] = token
    log = var_dir() / "demo-platform.log"
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"
    platform = Platform(host, port, env, log)
    stop_on_signals()
    filled: Filled | None = None
    try:
        began = time.monotonic()
        say(f"starting the platform (./attune run --port {port}); its full log: {log}")
        platform.start()
        if not wait_healthy(url, token, platform):
            if not platform.alive():
                say(f"the platform stopped; the end of its log:\n{platform.tail()}")
                return 1
        else:
            say(f"the platform is up ({time.monotonic() - began:.1f} s)")
            try:
                filled = _fill(url, env, options, say)
            except Exception as err:  # the platform is up: show it anyway, say what went wrong
                say(f"the fill stopped ({type(err).__name__}: {err}); the platform runs on")
        print(summary(url, platform, filled, log), flush=True)
        code = platform.wait()
        say(f"the platform stopped (exit status {code}); the end of its log:\n{platform.tail()}")
        return 1
    except Stop:
        print("\nattune demo: stopping …", flush=True)
        return 0
    finally:
        ignore_signals()
        _close_database()
        platform.stop()


def _fill(url: str, env: dict[str, str], options: FillOptions, echo: Callable) -> Filled:
    from attune.demo_fill import is_filled, state_path

    setup_django(env)
    if is_filled(state_path()) and not options.refill:
        echo("filled before (var/demo.json): not filling again (--refill plays new people)")
        return fill(url, options)  # skips, and knows the app's key
    began = time.monotonic()
    echo(f"filling it: {options.people} people + demo, {options.rounds} rounds each")
    filled = fill(url, options, echo=print)
    echo(f"filled in {time.monotonic() - began:.1f} s")
    return filled


def _close_database() -> None:
    """This process's connections, before the platform stops its database."""
    if "django.db" in sys.modules:
        from django.db import connections

        connections.close_all()


def demo_options(args: Any) -> FillOptions:
    """The fill's options from ``./attune demo``'s arguments."""
    return FillOptions(
        people=args.people, rounds=args.rounds, refill=args.refill, wait=not args.no_wait
    )

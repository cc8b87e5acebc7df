"""``./attune run``: start the platform in the foreground, keep it running, stop it on Ctrl-C.

Order: database (embedded unless DATABASE_URL) → preflight checks → migrations and demo users
(when the web part runs) → the parts, as supervised child processes (:mod:`attune.supervisor`):

    web         gunicorn attune.wsgi                             the web UI, the API, /v1
    worker      celery -A attune worker -Q maintenance,default   short jobs, reapers, sweeps
    gpu-worker  celery -A attune worker -Q gpu                   fits and CoPL training
    beat        celery -A attune beat                            periodic jobs (the schedule)
    serving     python -m workers.serving                        generation (ATTUNE_SERVING_PORT)

Fits have a worker of their own so that a run of fits never holds up the feedback work (embeddings,
preference inference) and the reapers behind it.

A part that dies is started again with back-off; so is the embedded database if this run started
it. Only Ctrl-C (or SIGTERM) stops everything: the children, then the embedded database.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Collection
from pathlib import Path

from attune import embedded_db, preflight
from attune.supervisor import Child, Supervisor, Watched, say
from core.config import var_dir

ROOT = Path(__file__).resolve().parents[2]
PARTS = ("web", "worker", "gpu-worker", "beat", "serving")


class Stop(BaseException):
    """Ctrl-C or SIGTERM, raised by the signal handler in the main thread wherever it is
    (start-up or supervision); a BaseException, like KeyboardInterrupt, so that no
    ``except Exception`` swallows it."""


def _on_signal(signum: int, frame: object) -> None:
    raise Stop


def stop_on_signals() -> None:
    """From now on Ctrl-C and SIGTERM raise :class:`Stop` in the main thread."""
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)


def ignore_signals() -> None:
    """Ctrl-C and SIGTERM do nothing (while stopping: a second one must not cut it short)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _prepare_database() -> tuple[str, bool]:
    if url := os.environ.get("DATABASE_URL"):
        preflight.check_database(url)
        return url, False
    print("attune: starting the embedded PostgreSQL (var/pgdata) …", flush=True)
    url, started = embedded_db.start()
    preflight.check_database(url)
    return url, started


def _migrate_and_seed(env: dict[str, str]) -> None:
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")})
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    from apps.accounts.demo import ensure_demo_users

    created = ensure_demo_users()
    if created:
        print("\nDemo logins (shown this once; keep them):")
        for login in created:
            role = "staff" if login.is_staff else "user"
            print(f"  {role:<5}  {login.username} / {login.password}   API token: {login.token}")
        print()
    else:
        print("attune: demo users exist (their logins were printed on the first run)")


def commands(host: str, port: int) -> dict[str, list[str]]:
    """Each part's command line (what an operator runs to start that part alone)."""
    bin_dir = Path(sys.executable).parent
    celery = str(bin_dir / "celery")
    return {
        "web": [
            str(bin_dir / "gunicorn"), "attune.wsgi", "--bind", f"{host}:{port}",
            "--workers", os.environ.get("ATTUNE_WEB_WORKERS", "2"), "--threads", "4",
            # longer than clients keep an idle connection (httpx 5 s), so none sends a request
            # on a connection the server is closing (gunicorn's default is 2 s)
            "--keep-alive", os.environ.get("ATTUNE_WEB_KEEPALIVE", "75"),
            "--access-logfile", "-",
        ],
        "worker": [
            celery, "-A", "attune", "worker", "-Q", "maintenance,default",
            "-c", os.environ.get("ATTUNE_WORKER_CONCURRENCY", "2"), "-n", "attune@%h",
            "--loglevel", "INFO",
        ],
        "gpu-worker": [
            celery, "-A", "attune", "worker", "-Q", "gpu",
            "-c", os.environ.get("ATTUNE_GPU_WORKER_CONCURRENCY", "1"), "-n", "attune-gpu@%h",
            "--loglevel", "INFO",
        ],
        "beat": [
            celery, "-A", "attune", "beat", "-s", str(var_dir() / "celerybeat-schedule"),
            "--loglevel", "INFO",
        ],
        "serving": [sys.executable, "-m", "workers.serving"],
    }  # fmt: skip


def _database_watch(env: dict[str, str], children: list[Child]) -> Watched:
    """The embedded database, started again if its server stops; the children follow a new URL
    (the data folder fixes the socket, so the URL normally stays the same)."""

    def start_again() -> None:
        url, _ = embedded_db.start()
        if url != env["DATABASE_URL"]:
            say("the database URL changed; restarting the parts")
            env["DATABASE_URL"] = url
            for child in children:
                child.env["DATABASE_URL"] = url
                child.restart_now()

    return Watched("embedded database", lambda: embedded_db.running_uri() is not None, start_again)


def run(host: str, port: int, parts: Collection[str] = PARTS) -> int:
    from attune.cli import python_env

    stop_on_signals()
    started_db = False
    supervisor = Supervisor([])
    try:
        url, started_db = _prepare_database()
        env = python_env(DATABASE_URL=url)
        if broker := os.environ.get("CELERY_BROKER_URL"):
            preflight.check_broker(broker)
        if "web" in parts:  # the web part owns the schema: the other parts may run elsewhere
            _migrate_and_seed(env)
        command_lines = commands(host, port)
        children = [Child(p, command_lines[p], dict(env), ROOT) for p in PARTS if p in parts]
        watched = [_database_watch(env, children)] if started_db else []
        supervisor = Supervisor(children, watched)
        supervisor.start()
        names = ", ".join(child.name for child in children)
        where = f"; http://{host}:{port}/ (health: /healthz, API docs: /api/docs/)"
        print(
            f"attune: running {names}{where if 'web' in parts else ''}; "
            "a part that stops is started again; Ctrl-C stops everything",
            flush=True,
        )
        supervisor.run_forever()
    except Stop:
        print("\nattune: stopping …", flush=True)
        return 0
    finally:
        ignore_signals()
        supervisor.stop()
        if started_db:
            embedded_db.stop()
        print("attune: stopped", flush=True)

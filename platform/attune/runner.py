"""``./attune run``: start everything in the foreground, stop everything on Ctrl-C.

Order: database (embedded unless DATABASE_URL) → preflight checks → migrations → demo users → web
server (gunicorn), Celery worker and the serving process (``python -m workers.serving``: generation,
on ATTUNE_SERVING_PORT) as child processes. A child that dies takes the rest down with a clear
message; Ctrl-C (or SIGTERM) stops the children, then the embedded database if we started it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from attune import embedded_db, preflight

ROOT = Path(__file__).resolve().parents[2]
STOP_GRACE_SECONDS = 20


class _Stop(Exception):
    pass


def _on_signal(signum: int, frame: object) -> None:
    raise _Stop


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


def _spawn(name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
    # Own session: the terminal's Ctrl-C reaches us only, and we stop the children in order.
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)


def _stop_children(children: dict[str, subprocess.Popen]) -> None:
    for proc in children.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for name, proc in children.items():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"attune: {name} did not stop in {STOP_GRACE_SECONDS}s; killing it", flush=True)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run(host: str, port: int, worker: bool = True, serving: bool = True) -> int:
    from attune.cli import python_env

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    started_db = False
    children: dict[str, subprocess.Popen] = {}
    try:
        url, started_db = _prepare_database()
        env = python_env(DATABASE_URL=url)
        if broker := os.environ.get("CELERY_BROKER_URL"):
            preflight.check_broker(broker)
        _migrate_and_seed(env)
        bin_dir = Path(sys.executable).parent
        web_workers = os.environ.get("ATTUNE_WEB_WORKERS", "2")
        children["web"] = _spawn(
            "web",
            [
                str(bin_dir / "gunicorn"),
                "attune.wsgi",
                "--bind",
                f"{host}:{port}",
                "--workers",
                web_workers,
                "--threads",
                "4",
                "--access-logfile",
                "-",
            ],
            env,
        )
        if worker:
            concurrency = os.environ.get("ATTUNE_WORKER_CONCURRENCY", "2")
            children["worker"] = _spawn(
                "worker",
                [
                    str(bin_dir / "celery"),
                    "-A",
                    "attune",
                    "worker",
                    "-Q",
                    "default,gpu",
                    "-c",
                    concurrency,
                    "-n",
                    "attune@%h",
                    "--loglevel",
                    "INFO",
                ],
                env,
            )
        if serving:  # the generation process (torch): base model, adapters, batching
            children["serving"] = _spawn("serving", [sys.executable, "-m", "workers.serving"], env)
        print(
            f"attune: serving http://{host}:{port}/  (health: /healthz, API docs: /api/docs/); "
            "Ctrl-C stops everything",
            flush=True,
        )
        while True:
            for name, proc in children.items():
                if proc.poll() is not None:
                    print(
                        f"attune: the {name} process exited ({proc.returncode}); stopping",
                        file=sys.stderr,
                        flush=True,
                    )
                    return 1
            time.sleep(0.5)
    except _Stop:
        print("\nattune: stopping …", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _stop_children(children)
        if started_db:
            embedded_db.stop()
        print("attune: stopped", flush=True)

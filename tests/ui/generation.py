"""Generation for the browser tests: a real serving process (``python -m workers.serving``) on the
test database, loading the tiny style model built for the session (``tests.support.style_models``).

The serving process gets its own var dir (``ATTUNE_VAR_DIR``, holding the tiny build) and no
``ATTUNE_BASE_MODEL``, so it never reads the repository's ``var/models`` and runs the same on a
fresh clone. A serving process that does not come up fails the test. Pages that only need an
existing text as their starting point use :func:`stored_interaction` instead (fast).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from apps.feedback.models import Interaction
from apps.feedback.services import create_interaction
from tests.support.processes import ROOT, database_url_for_tests, project_env
from workers.modeling.prompting import build_instruction
from workers.modeling.style_lm import is_built, style_lm_dir
from workers.world.renderer import render
from workers.world.sources import Context

SERVING_KEY = "ui-test-serving-key"
APPLICATION_NAME = "attune-ui-serving"  # its database sessions, told apart from the live server's
START_TIMEOUT_S = 180
MAX_TOKENS = 24  # the tiny model's text only has to be there (as in tests/apps/generation)
ASK_TRIES = 3  # the tiny model may sample EOS first (rarely): the person then asks again


@dataclass(frozen=True)
class Serving:
    """The running serving process: its URL and its output (in a failure's message)."""

    url: str
    log: Path


def stored_interaction(user, context: Context) -> Interaction:
    """A text for ``user`` stored directly (setup for pages that only start from one)."""
    return create_interaction(
        user,
        prompt=build_instruction("summarize", context.text, None, context.source),
        source=context.source,
        output=render(context, "summarize", {"format": "prose"}),
        model_id="attune/style-lm",
    )


def ask_for_text(page, serving: Serving, context: Context) -> int:
    """Ask for a summary of ``context`` through the ask form (the page is on ``/ask``); the id
    of the generated, non-empty text, whose page the browser is then on."""
    for attempt in range(ASK_TRIES):
        if attempt:
            page.goto("/ask")
        page.check("input[name=mode][value=task]")
        page.select_option("#id_task", "summarize")
        page.select_option("#id_source", context.source)
        page.fill("#id_context", context.text)
        with page.expect_navigation():
            page.click("#ask-form button[type=submit]")
        if "/i/" not in page.url:
            pytest.fail(
                f"asking for a text failed: {page.inner_text('main')}\n"
                f"the serving process said:\n{_tail(serving.log)}"
            )
        interaction_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
        if Interaction.objects.get(pk=interaction_id).output.strip():
            return interaction_id
    pytest.fail(f"the serving process answered an empty text {ASK_TRIES} times")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(proc: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the serving process exited with {proc.returncode}:\n{_tail(log)}")
        with (
            contextlib.suppress(OSError, ValueError),
            urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer,
        ):
            if json.loads(answer.read()).get("status") == "ok":
                return
        time.sleep(0.2)
    pytest.fail(f"the serving process did not answer within {START_TIMEOUT_S} s:\n{_tail(log)}")


def _wait_for_its_sessions_to_close(timeout: float = 10.0) -> None:
    """Until the stopped serving process's database sessions are gone (the test database is
    flushed, later dropped, after the test)."""
    from django.db import connection

    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                [APPLICATION_NAME],
            )
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.1)


def _tail(log: Path, chars: int = 4000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.is_file() else ""


@pytest.fixture
def serving(live_server, settings, tiny_style_var: Path, tmp_path: Path) -> Iterator[Serving]:
    """A serving process on the tiny style model and the test database; the live server's web
    side talks to it."""
    assert is_built(style_lm_dir(tiny_style_var))
    adapter_root = tiny_style_var / "adapters"
    adapter_root.mkdir(exist_ok=True)
    port = _free_port()
    database_url = database_url_for_tests()
    database_url += ("&" if "?" in database_url else "?") + f"application_name={APPLICATION_NAME}"
    env = project_env(
        DATABASE_URL=database_url,
        ATTUNE_VAR_DIR=str(tiny_style_var),
        ATTUNE_ADAPTER_ROOT=str(adapter_root),
        ATTUNE_SERVING_KEY=SERVING_KEY,
        ATTUNE_SERVING_DEFAULT_MAX_TOKENS=str(MAX_TOKENS),
        ATTUNE_SERVING_THREADS="1",
        DJANGO_SECRET_KEY=settings.SECRET_KEY,
        ATTUNE_LOG_LEVEL="WARNING",
    )
    env.pop("ATTUNE_BASE_MODEL", None)  # the built-in style model: the tiny build in the var dir
    log = tmp_path / "serving.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "workers.serving", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    settings.ATTUNE_SERVING_URL = url
    settings.ATTUNE_SERVING_KEY = SERVING_KEY
    settings.ATTUNE_ADAPTER_ROOT = adapter_root
    try:
        _wait_healthy(proc, url, log)
        yield Serving(url, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        _wait_for_its_sessions_to_close()

"""Generation for the browser tests: a real serving process (``python -m workers.serving``) on the
test database, loading the tiny style model built for the session (``tests.support.style_models``).

The serving process gets its own var dir (``ATTUNE_VAR_DIR``, holding the tiny build) and no
``ATTUNE_BASE_MODEL``, so it never reads the repository's ``var/models`` and runs the same on a
fresh clone. A serving process that does not come up fails the test. Pages that only need an
existing text as their starting point use :func:`stored_interaction` instead (fast).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from apps.feedback.models import Interaction
from apps.feedback.services import create_interaction
from core.prompting import build_instruction
from core.world.renderer import render
from core.world.sources import Context
from tests.support.serving import serving_process
from workers.modeling.style_lm import is_built, style_lm_dir

SERVING_KEY = "ui-test-serving-key"
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


def _tail(log: Path, chars: int = 4000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.is_file() else ""


@pytest.fixture
def serving(live_server, settings, tiny_style_var: Path, tmp_path: Path) -> Iterator[Serving]:
    """A serving process on the tiny style model and the test database; the live server's web
    side talks to it."""
    assert is_built(style_lm_dir(tiny_style_var))
    log = tmp_path / "serving.log"
    with serving_process(
        tiny_style_var, SERVING_KEY, settings.SECRET_KEY, log,
        ATTUNE_SERVING_DEFAULT_MAX_TOKENS=str(MAX_TOKENS),
    ) as (url, adapter_root):  # fmt: skip
        settings.ATTUNE_SERVING_URL = url
        settings.ATTUNE_SERVING_KEY = SERVING_KEY
        settings.ATTUNE_ADAPTER_ROOT = adapter_root
        yield Serving(url, log)

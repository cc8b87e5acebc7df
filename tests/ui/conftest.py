"""Browser tests: Playwright for Python driving Debian's Chromium against pytest-django's
live server. Screenshots of the main pages go to ``var/test-artifacts/screenshots/``.

Chromium is the system one (``apt-get install -y chromium``; ``.ci/run`` installs it), never a
browser downloaded by ``playwright install``. Without it these tests are skipped, unless
``ATTUNE_REQUIRE_BROWSER=1`` (CI) turns that into a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("ATTUNE_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = ROOT / "var" / "test-artifacts" / "screenshots"
PASSWORD = "correct horse battery"
TIMEOUT_MS = 90_000  # the first edit loads the embedding model in the live server


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        reason = f"no Chromium at {CHROMIUM}: apt-get install -y chromium (or set ATTUNE_CHROMIUM)"
        if os.environ.get("ATTUNE_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
    # between browser steps are still plain synchronous calls.
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
            )
            yield chromium
            chromium.close()
    finally:
        if before is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@pytest.fixture
def new_page(browser, live_server):
    """Pages in fresh browser contexts (separate cookies), ``width`` px wide."""
    contexts = []

    def make(width: int = 1280, height: int = 900):
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": width, "height": height}
        )
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def make_user(**fields: object):
    person = UserFactory(**fields)
    person.save()  # the factory sets the password on the instance only
    return person


def log_in(page, username: str, path: str = "/") -> None:
    page.goto(path)
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def overflow_px(page) -> int:
    """How far the page is wider than the window (0 when nothing sticks out sideways)."""
    return page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - window.innerWidth"
    )


from tests.support.style_models import tiny_style_var  # noqa: E402, F401  (a fixture)
from tests.ui.generation import serving  # noqa: E402, F401  (the fixture)

"""Every page is sent with a Content-Security-Policy that allows scripts only from Attune's own
files, and no rendered page has an inline script, an event-handler attribute or a
``javascript:`` URL (each would be blocked, so a page that had one would be broken)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from tests.support.factories import EditFactory, InteractionFactory, UserFactory

pytestmark = pytest.mark.django_db


class InlineScripts(HTMLParser):
    """What a strict ``script-src 'self'`` would block in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        kind = (named.get("type") or "text/javascript").lower()
        if tag == "script" and not named.get("src") and "json" not in kind:
            self.found.append(f"inline <script> at line {self.getpos()[0]}")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=…> at line {self.getpos()[0]}")
            if name in {"href", "src", "action"} and (value or "").strip().lower().startswith(
                "javascript:"
            ):
                self.found.append(f"<{tag} {name}=javascript:…>")


def check_page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    policy = response["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if " " in d.strip())
    assert directives["script-src"] == "'self'", (url, policy)
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    parser = InlineScripts()
    parser.feed(response.content.decode())
    assert not parser.found, (url, parser.found)
    return response.content.decode()


def test_the_check_finds_what_a_strict_policy_blocks():
    parser = InlineScripts()
    parser.feed(
        '<script>go()</script><script src="/s.js"></script><a onclick="x()" href="#">'
        '<a href="javascript:go()"><script type="application/json">{}</script>'
    )
    assert len(parser.found) == 3, parser.found


@pytest.fixture(autouse=True)
def no_serving(settings):
    settings.ATTUNE_SERVING_URLS = ["http://127.0.0.1:9"]  # refused at once: pages say so


def test_web_pages(client):
    check_page(client, "/login")
    person = UserFactory()
    person.save()
    client.force_login(person)
    interaction = InteractionFactory(user=person)
    EditFactory(interaction=interaction)
    for url in ["/ask", "/history", "/me", "/my-data", f"/i/{interaction.pk}", "/compare"]:
        check_page(client, url)


def test_console_admin_and_api_docs(client):
    operator = UserFactory(is_staff=True, is_superuser=True)
    operator.save()
    check_page(client, "/admin/login/")
    client.force_login(operator)
    person = UserFactory()
    EditFactory(interaction=InteractionFactory(user=person, output="one two three"))
    pages = ["/console/", f"/console/users/{person.pk}", "/console/jobs", "/console/plots"]
    for url in [*pages, "/console/audit", "/admin/", "/admin/accounts/user/"]:
        check_page(client, url)
    docs = check_page(client, "/api/docs/")
    assert "?script=" in docs  # Swagger UI starts from a script file, not an inline one
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()

"""The scale benchmark's pages: every URL of the web UI and the console, with a session.

A person logs in through the web login form (CSRF cookie and field, as a browser does); the
session's cookies then go to every measuring thread. Each URL name of ``apps/web/urls.py`` and
``apps/console/urls.py`` has a recipe (a GET, or a POST with its form); a name without one, or
one that cannot be measured here (it generates, or ends the session), is a row with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from bench._scale_http import OK, Caller, Make, Row, Subject, export_target, first_id, timed

CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def log_in(base: str, label: str, username: str, password: str) -> Caller:
    """A caller with a web session, logged in through the login form."""
    anonymous = Caller(base, label)
    page = anonymous.send("GET", "/login")
    token = CSRF_FIELD.search(page.text)
    if token is None:
        raise RuntimeError(f"no CSRF field on the login page (HTTP {page.status_code})")
    answer = anonymous.send(
        "POST",
        "/login",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token.group(1)},
    )
    cookies = anonymous.session().cookies.get_dict()
    if answer.status_code != 302 or "sessionid" not in cookies:
        raise RuntimeError(f"login of {username} failed (HTTP {answer.status_code})")
    return Caller(base, label, cookies=cookies)


def url_names() -> dict[str, list[str]]:
    """The URL names of the web UI and of the console (Django is set up)."""
    from apps.console.urls import urlpatterns as console
    from apps.web.urls import urlpatterns as web

    return {"web": [p.name for p in web], "console": [p.name for p in console]}


NOT_HERE = {
    "logout": "ends the session the other pages use (each login costs a password hash)",
    "my-data-delete": "the same erase as DELETE /api/my-data, measured once at the end",
}
GENERATES = "its POST generates (needs the serving process); the GET is measured"


def web_recipes(s: Subject, web: Caller) -> dict[str, list[tuple[str, Make]]]:
    """Requests per URL name of the web UI, as ``s`` logged in (``web``)."""
    a, b = s.interactions[0], s.interactions[1 % len(s.interactions)]
    count = max(1, len(s.interactions))

    def get(path: str) -> Make:
        return lambda i, c: ("GET", path, {})

    def post(path: str, data: Callable[[int], dict]) -> Make:
        return lambda i, c: ("POST", path, {"data": data(i)})

    entry = first_id(s.caller, "/api/memory")
    sliders = [v["name"] for v in s.caller.json("GET", "/api/preference-vectors")["results"]]

    def new_entry(i: int, c: Caller) -> tuple[str, str, dict]:
        made = s.caller.json(
            "POST",
            "/api/memory",
            json={"preference": "brief", "context_text": f"notes {i}", "source": "news"},
        )
        return "POST", f"/me/preferences/{made['id']}/delete", {}

    pages = s.caller.json("GET", "/api/interactions?limit=1").get("count", count) // 20 + 1
    recipes: dict[str, list[tuple[str, Make]]] = {
        "home": [("", get("/"))],
        "login": [("(logged in: redirect)", get("/login"))],
        "ask": [("", get("/ask"))],
        "compare": [("", get("/compare"))],
        "compare-pair": [("", get(f"/compare/{a}/{b}"))],
        "choose": [("", post(f"/compare/{a}/{b}/choose", lambda i: {"choice": "ab"[i % 2]}))],
        "history": [("", get("/history")), (f"?page={pages}", get(f"/history?page={pages}"))],
        "next": [("", get("/next"))],
        "interaction": [("", get(f"/i/{a}"))],
        "rate": [("", post(f"/i/{a}/rate", lambda i: {"rating": str(1 + i % 5)}))],
        "edit": [
            ("save", post(f"/i/{a}/edit", lambda i: {"edited": f"- Done ({i}).", "action": "save"}))
        ],
        "diff": [("", post(f"/i/{a}/diff", lambda i: {"edited": f"- Done ({i})."}))],
        "learned-from": [("", get(f"/i/{a}/learned"))],
        "learned": [("", get("/me"))],
        "preference-add": [
            (
                "",
                post(
                    "/me/preferences",
                    lambda i: {
                        "preference": "brief",
                        "context_text": f"notes {i}",
                        "source": "news",
                    },
                ),
            )
        ],
        "preference-delete": [("", new_entry)],
        "persona": [
            (
                "",
                post(
                    "/me/persona",
                    lambda i: {"text": "I write notes.", "attributes": "tone: casual"},
                ),
            )
        ],
        "sliders": [("", post("/me/sliders", lambda i: dict.fromkeys(sliders, str((i % 5) / 4))))],
        "my-data": [("", get("/my-data"))],
        "my-data-export": [("", get("/my-data/export"))],
    }
    if entry is not None:
        recipes["preference-edit"] = [
            (
                "",
                post(
                    f"/me/preferences/{entry}",
                    lambda i: {
                        f"e{entry}-preference": f"brief {i % 3}",
                        f"e{entry}-source": "news",
                    },
                ),
            )
        ]
    return recipes


def console_recipes(heavy: Subject, typical: Subject) -> dict[str, list[tuple[str, Make]]]:
    """Requests per URL name of the console (as staff), about the typical and heaviest users."""

    def get(path: str) -> Make:
        return lambda i, c: ("GET", path, {})

    def post(path: str) -> Make:
        return lambda i, c: ("POST", path, {})

    adapter = first_id(heavy.caller, "/api/adapters")
    h, t = heavy.user_id, typical.user_id
    recipes: dict[str, list[tuple[str, Make]]] = {
        "users": [
            ("", get("/")),
            ("?page=200", get("/?page=200")),
            ("?q=person1", get("/?q=person1")),
        ],
        "user": [
            (f"{typical.label} user", get(f"/users/{t}")),
            (f"{heavy.label} user", get(f"/users/{h}")),
        ],
        "roll-back": [(f"{heavy.label} user", post(f"/users/{h}/adapters/roll-back"))],
        "fit": [(f"{heavy.label} user", post(f"/users/{h}/fit"))],
        "jobs": [("", get("/jobs"))],
        "jobs-json": [("", get("/jobs.json"))],
        "plots": [("", get("/plots"))],
        "audit": [("", get("/audit"))],
    }
    if adapter is not None:
        recipes["promote"] = [
            (f"{heavy.label} user", post(f"/users/{h}/adapters/{adapter}/promote"))
        ]
    return recipes


def page_rows(
    area: str,
    names: list[str],
    recipes: dict[str, list[tuple[str, Make]]],
    caller: Caller,
    prefix: str,
    n: int,
    max_seconds: float,
    on_row: Callable[[Row], None],
) -> None:
    """Measure each URL name's recipes; a name without one is a row saying why."""
    for name in names:
        if name in NOT_HERE:
            on_row(Row(area, name, caller.label, note="not measured: " + NOT_HERE[name]))
            continue
        if name not in recipes:
            on_row(Row(area, name, caller.label, note="not measured: no recipe for this page"))
            continue
        for variant, make in recipes[name]:
            label = f"{name} {variant}".strip()
            stream = name == "my-data-export"

            def shifted(i: int, c: Caller, make: Make = make) -> tuple[str, str, dict]:
                method, path, kw = make(i, c)
                return method, prefix + path if not path.startswith(prefix) else path, kw

            row = Row(
                area,
                label,
                caller.label,
                expected=OK | {301},
                # the issue's rule for exports; 50 MB/s is asked of GET /api/my-data (heaviest)
                target=export_target(20.0) if stream else "p99 < 200 ms",
            )
            on_row(timed(row, caller, shifted, n, max_seconds, stream=stream))
        if name in {"ask", "compare"}:
            on_row(Row(area, f"{name} POST", caller.label, note="not measured: " + GENERATES))

"""The scale benchmark's API: a request for every operation of the OpenAPI schema.

:func:`api_rows` fetches ``/api/schema/`` from the server and measures each path and method as
the given user: lists (first page, a filtered page, a deep page, the ``next`` link), details (an
id from the list), creates, updates and deletes (recipes below). An operation without a recipe,
or whose request cannot be built for this user, is a row that says why, never left out.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import requests

from bench._scale_http import (
    OK,
    Caller,
    Make,
    Req,
    Row,
    Subject,
    created,
    export_target,
    first_id,
    list_path,
    timed,
)


def after(setup: Callable[[Caller], Any], request: tuple[str, str]) -> Make:
    """``request`` after an untimed ``setup`` (e.g. the persona a DELETE removes)."""

    def make(i: int, caller: Caller) -> Req:
        setup(caller)
        return request[0], request[1], {}

    return make


Recipe = tuple[Subject, Make] | str  # a request as someone, or why there is none


def write_recipes(s: Subject, staff: Subject) -> dict[tuple[str, str], Recipe]:
    """A request for each write operation (and the staff-only reads), by (method, path)."""
    ia = s.interactions

    def pick(i: int, k: int = 0) -> int:
        return ia[(i + k) % len(ia)]

    def get(path: str) -> Make:
        return lambda i, c: ("GET", path, {})

    def post(path: str, body: Callable[[int], dict] | None = None) -> Make:
        return lambda i, c: ("POST", path, {"json": body(i) if body else None})

    def delete_new(path: str, body: Callable[[int], dict] | None) -> Make:
        return lambda i, c: ("DELETE", f"{path}/{created(c, path, body(i) if body else None)}", {})

    def patch(path: str, body: dict) -> Make:
        return lambda i, c: ("PATCH", path, {"json": body})

    def interaction(i: int) -> dict:
        prompt = f"Summarize note {i} for the team."
        return {"prompt": prompt, "source": "news", "output": "The team agreed on a plan."}

    def rating(i: int) -> dict:
        return {"interaction": pick(i), "stars": 1 + i % 5}

    def edit(i: int) -> dict:
        return {"interaction": pick(i), "edited": f"- The team agreed ({i})."}

    def comparison(i: int) -> dict:
        return {"interaction_a": pick(i), "interaction_b": pick(i, 1), "choice": "a"}

    def memory(i: int) -> dict:
        return {"preference": "brief, bullets", "context_text": f"Notes {i}", "source": "news"}

    persona = {"text": "I write short notes.", "attributes": {"tone": "casual"}}
    ids = {p: first_id(s.caller, p) for p in ("/api/ratings", "/api/comparisons", "/api/memory")}
    adapter = first_id(s.caller, "/api/adapters")
    recipes: dict[tuple[str, str], Recipe] = {
        ("POST", "/api/apps"): (s, post("/api/apps", lambda i: {"name": f"bench {i}"})),
        ("DELETE", "/api/apps/{id}"): (s, delete_new("/api/apps", lambda i: {"name": "gone"})),
        ("POST", "/api/tokens"): (s, post("/api/tokens", lambda i: {"name": f"bench {i}"})),
        ("DELETE", "/api/tokens/{id}"): (s, delete_new("/api/tokens", lambda i: {"name": "x"})),
        ("POST", "/api/interactions"): (s, post("/api/interactions", interaction)),
        ("DELETE", "/api/interactions/{id}"): (s, delete_new("/api/interactions", interaction)),
        ("POST", "/api/ratings"): (s, post("/api/ratings", rating)),
        ("DELETE", "/api/ratings/{id}"): (s, delete_new("/api/ratings", rating)),
        ("POST", "/api/edits"): (s, post("/api/edits", edit)),
        ("DELETE", "/api/edits/{id}"): (s, delete_new("/api/edits", edit)),
        ("POST", "/api/comparisons"): (s, post("/api/comparisons", comparison)),
        ("DELETE", "/api/comparisons/{id}"): (s, delete_new("/api/comparisons", comparison)),
        ("POST", "/api/memory"): (s, post("/api/memory", memory)),
        ("DELETE", "/api/memory/{id}"): (s, delete_new("/api/memory", memory)),
        ("PUT", "/api/persona"): (s, lambda i, c: ("PUT", "/api/persona", {"json": persona})),
        ("PATCH", "/api/persona"): (s, patch("/api/persona", {"attributes": {"tone": "warm"}})),
        ("DELETE", "/api/persona"): (
            s,
            after(
                lambda c: c.send("PUT", "/api/persona", json=persona), ("DELETE", "/api/persona")
            ),
        ),
        ("PUT", "/api/preference-coefficients"): (
            s,
            lambda i, c: (
                "PUT",
                "/api/preference-coefficients",
                {"json": {"coefficients": {"format-bullets-vs-prose": (i % 5) / 4}}},
            ),
        ),
        ("POST", "/api/preference-coefficients/fit"): (s, post("/api/preference-coefficients/fit")),
        ("POST", "/api/fit-jobs"): (s, post("/api/fit-jobs")),
        ("POST", "/api/adapters/roll-back"): (
            s,
            after(
                lambda c: c.send("POST", f"/api/adapters/{adapter}/promote"),
                ("POST", "/api/adapters/roll-back"),
            ),
        ),
        ("POST", "/api/preference-vectors/fit"): (
            staff,
            post("/api/preference-vectors/fit", lambda i: {"dimension": "format-bullets-vs-prose"}),
        ),
        ("POST", "/api/collab/versions"): (staff, post("/api/collab/versions")),
        ("POST", "/api/collab/versions/{id}/activate"): (
            staff,
            post("/api/collab/versions/1/activate"),
        ),
        ("GET", "/api/collab/versions"): (staff, get("/api/collab/versions")),
        ("GET", "/api/collab/versions/{id}"): (staff, get("/api/collab/versions/1")),
        ("GET", "/api/collab/versions/{id}/map"): (staff, get("/api/collab/versions/1/map")),
        ("GET", "/api/collab/users/{user_id}"): (staff, get(f"/api/collab/users/{s.user_id}")),
    }
    updates = {
        ("PATCH", "/api/ratings/{id}"): ("/api/ratings", {"thumbs": "down"}),
        ("PATCH", "/api/comparisons/{id}"): ("/api/comparisons", {"choice": "b"}),
        ("PATCH", "/api/memory/{id}"): ("/api/memory", {"preference": "brief, casual"}),
    }
    for key, (listed, body) in updates.items():
        found = ids[listed]
        recipes[key] = (s, patch(f"{listed}/{found}", body)) if found else "this user has none"
    recipes[("POST", "/api/adapters/{id}/promote")] = (
        (s, post(f"/api/adapters/{adapter}/promote")) if adapter else "this user has no adapter"
    )
    return recipes


SKIP = {
    ("POST", "/v1/chat/completions"): "generation needs the serving process (not started here)",
    ("DELETE", "/api/my-data"): "measured once, for the heaviest user, at the end",
}
CONFLICTS = {  # right answers here too: nothing to roll back, a fit open, too few pairs
    ("POST", "/api/adapters/roll-back"): {409},
    ("POST", "/api/fit-jobs"): {409},
    ("POST", "/api/collab/versions"): {409},
    ("DELETE", "/api/persona"): {404},  # the threads share one persona: another's DELETE won
}
STREAMED = {"/api/export/dpo", "/api/export/kto", "/api/my-data"}
ORDER = {"GET": 0, "POST": 1, "PUT": 1, "PATCH": 2, "DELETE": 3}


def operations(caller: Caller) -> list[tuple[str, str, dict]]:
    """Every (method, path, operation) of the served schema, reads first, deletes last."""
    schema = caller.json("GET", "/api/schema/?format=json")
    found = [
        (m.upper(), p, op)
        for p, ops in schema["paths"].items()
        for m, op in ops.items()
        if m.upper() in ORDER
    ]
    return sorted(found, key=lambda t: (ORDER[t[0]], t[1]))


def api_rows(
    ops: list[tuple[str, str, dict]],
    s: Subject,
    staff: Subject,
    n: int,
    max_seconds: float,
    on_row: Callable[[Row], None],
) -> None:
    """Measure every operation as ``s`` (staff-only ones as ``staff``), calling ``on_row``."""
    recipes = write_recipes(s, staff)
    week_ago = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=7)).isoformat()
    for method, path, op in ops:
        name = f"{method} {path}"
        if (method, path) in SKIP:
            on_row(Row("api", name, s.label, note="not measured: " + SKIP[(method, path)]))
            continue
        if isinstance(recipe := recipes.get((method, path)), str):
            on_row(Row("api", name, s.label, note="not measured: " + recipe))
            continue
        if recipe is not None:
            who, make = recipe
            row = Row("api", name, who.label, expected=OK | CONFLICTS.get((method, path), set()))
            on_row(timed(row, who.caller, make, n, max_seconds))
            continue
        if method != "GET":
            on_row(Row("api", name, s.label, note="not measured: no recipe for this operation"))
            continue
        for row, make, stream in read_variants(s, path, op, week_ago):
            if make is None:
                on_row(row)
            else:
                on_row(timed(row, s.caller, make, n, max_seconds, stream=stream))


def read_variants(s: Subject, path: str, op: dict, since: str) -> list[tuple[Row, Any, bool]]:
    """The GETs of one path: the first page, filtered, deep and ``next`` pages of a list; a
    detail with an id from its list; an export streamed."""
    params = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
    name = f"GET {path}"
    if path in STREAMED:
        rate = 50.0 if path == "/api/my-data" else 20.0
        row = Row("export", name, s.label, target=export_target(rate), min_mb_s=rate)
        return [(row, lambda i, c: ("GET", path, {}), True)]
    if "{" in path:
        try:
            found = first_id(s.caller, list_path(path))
        except (requests.RequestException, ValueError, KeyError) as err:
            return [
                (
                    Row("api", name, s.label, note=f"not measured: its list failed ({err})"),
                    None,
                    False,
                )
            ]
        if found is None:
            return [
                (Row("api", name, s.label, note="not measured: this user has none"), None, False)
            ]
        concrete = path.split("{")[0] + str(found) + path.split("}", 1)[1]
        return [(Row("api", name, s.label), lambda i, c: ("GET", concrete, {}), False)]
    variants: list[tuple[Row, Any, bool]] = [
        (Row("api", name, s.label), lambda i, c: ("GET", path, {}), False)
    ]
    if "created_after" in params:
        filtered = f"{path}?created_after={since.replace('+', '%2B')}"
        variants.append(
            (
                Row("api", f"{name} ?created_after (7 days)", s.label),
                lambda i, c: ("GET", filtered, {}),
                False,
            )
        )
    if "limit" in params:
        first = s.caller.json("GET", f"{path}?limit=20")
        count = first.get("count") if isinstance(first, dict) else None
        if "offset" in params and count and count > 40:
            deep = f"{path}?limit=20&offset={count - 20}"
            variants.append(
                (
                    Row("api", f"{name} ?offset={count - 20}", s.label),
                    lambda i, c: ("GET", deep, {}),
                    False,
                )
            )
        nxt = first.get("next") if isinstance(first, dict) else None
        if nxt and "offset=" not in nxt:
            rel = nxt.split("://", 1)[-1].split("/", 1)[-1]
            variants.append(
                (
                    Row("api", f"{name} next link", s.label),
                    lambda i, c: ("GET", "/" + rel, {}),
                    False,
                )
            )
    return variants

"""The person's pages at size: history and learned preferences page by "newer" / "older"
positions, each page is small, and no page's queries grow with the person's history."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.feedback.models import Interaction
from apps.memory.models import MemoryEntry
from apps.web.views.learned import PAGE_SIZE
from tests.support.factories import EditFactory, InteractionFactory, RatingFactory

pytestmark = pytest.mark.django_db


def _links(page: bytes) -> dict[str, str]:
    """The page's "newer" (prev) and "older" (next) links."""
    found = re.findall(r'href="(\?page=[^"]+)" rel="(prev|next)"', page.decode())
    return {rel: href.replace("&amp;", "&") for href, rel in found}


def _ids(page: bytes, pattern: str) -> list[int]:
    return [int(pk) for pk in re.findall(pattern, page.decode())]


def _history(user, count: int) -> list[Interaction]:
    made = InteractionFactory.create_batch(count, user=user)
    for row in made[::3]:
        RatingFactory(interaction=row)
    for row in made[1::4]:
        EditFactory(interaction=row, edited=row.output + " Thanks!")
    return made


def _entries(user, count: int) -> None:
    MemoryEntry.objects.bulk_create(
        MemoryEntry(user=user, context_text=f"Context {n}", preference=f"pref {n}", origin="user")
        for n in range(count)
    )


def test_history_walks_older_and_back_newer_without_repeats(logged_in, user):
    made = _history(user, 45)
    expected = [row.pk for row in sorted(made, key=lambda r: (r.created_at, r.pk), reverse=True)]
    seen, pages, url = [], [], "/history"
    while url:
        page = logged_in.get(url).content
        pages.append(page)
        seen += _ids(page, r'href="/i/(\d+)"')
        url = "/history" + _links(page)["next"] if "next" in _links(page) else None
    assert seen == expected and len(pages) == 3
    back = logged_in.get("/history" + _links(pages[2])["prev"]).content
    assert _ids(back, r'href="/i/(\d+)"') == _ids(pages[1], r'href="/i/(\d+)"')
    assert "prev" not in _links(pages[0])


def test_an_old_page_number_shows_the_newest_texts(logged_in, user):
    _history(user, 25)
    first = logged_in.get("/history").content
    assert _ids(logged_in.get("/history?page=3").content, r'href="/i/(\d+)"') == _ids(
        first, r'href="/i/(\d+)"'
    )


def test_me_shows_one_page_of_preferences_and_the_total(logged_in, user):
    _entries(user, PAGE_SIZE + 7)
    page = logged_in.get("/me").content
    entries = _ids(page, r'id="entry-(\d+)"')
    assert len(entries) == PAGE_SIZE
    assert f'<span class="badge">{PAGE_SIZE + 7}</span>' in page.decode()
    chosen = '<option value="" selected>any text</option>'  # as Django writes it: + the add form
    assert page.decode().count(chosen) == PAGE_SIZE + 1
    rest = logged_in.get("/me" + _links(page)["next"]).content
    assert len(_ids(rest, r'id="entry-(\d+)"')) == 7
    everything = set(MemoryEntry.objects.filter(user=user).values_list("pk", flat=True))
    assert set(entries) | set(_ids(rest, r'id="entry-(\d+)"')) == everything


def test_a_correction_on_a_later_page_returns_to_that_page(logged_in, user):
    _entries(user, PAGE_SIZE + 3)
    older = "/me" + _links(logged_in.get("/me").content)["next"]
    pk = _ids(logged_in.get(older).content, r'id="entry-(\d+)"')[0]
    data = {f"e{pk}-preference": "short and warm", f"e{pk}-source": "", "return_to": older}
    saved = logged_in.post(f"/me/preferences/{pk}", data)
    assert saved.status_code == 302 and saved["Location"] == f"{older}#entry-{pk}"
    refused = logged_in.post(f"/me/preferences/{pk}", {**data, f"e{pk}-preference": ""})
    assert refused.status_code == 400 and f'id="entry-{pk}"' in refused.content.decode()
    gone = logged_in.post(f"/me/preferences/{pk}/delete", {"return_to": older})
    assert gone["Location"] == f"{older}#preferences"
    elsewhere = logged_in.post(f"/me/preferences/{pk + 1}/delete", {"return_to": "//evil.example/"})
    assert elsewhere["Location"] == "/me#preferences"


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
        assert response.status_code in (200, 302), url
    return len(captured.captured_queries)


def test_no_pages_queries_grow_with_history(logged_in, user, django_assert_max_num_queries):
    def pages() -> dict[str, str]:
        newest = Interaction.objects.filter(user=user).first()
        history = logged_in.get("/history").content
        me = logged_in.get("/me").content
        urls = {
            "/ask": "/ask",
            "/history": "/history",
            "/me": "/me",
            "/next": "/next",
            "/my-data": "/my-data",
            "/i": f"/i/{newest.pk}",
            "/compare": "/compare",
        }
        if "next" in _links(history):
            urls["/history older"] = "/history" + _links(history)["next"]
        if "next" in _links(me):
            urls["/me older"] = "/me" + _links(me)["next"]
        return urls

    _history(user, 3)
    _entries(user, 3)
    for url in pages().values():
        logged_in.get(url)  # warm
    small = {name: _queries(logged_in, url) for name, url in pages().items()}
    _history(user, 60)
    _entries(user, 60)
    large = pages()
    assert {"/history older", "/me older"} <= large.keys()
    for name, url in large.items():
        with django_assert_max_num_queries(small.get(name, small[name.split(" ")[0]])):
            logged_in.get(url)
    assert len(logged_in.get("/me").content) < 120_000

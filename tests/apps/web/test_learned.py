""" "What Attune learned about me": preferences (add, correct, delete), persona, sliders."""

from __future__ import annotations

import pytest

from apps.adapters.models import PreferenceCoefficient, PreferenceVector
from apps.memory.models import MemoryEntry
from apps.personas.models import PersonaProfile

pytestmark = pytest.mark.django_db


def entry_of(user, preference: str = "bullet points, brief") -> MemoryEntry:
    return MemoryEntry.objects.create(
        user=user, context_text="Summarize this wiki article.", source="wiki",
        preference=preference, origin=MemoryEntry.Origin.INFERRED,
    )  # fmt: skip


def test_the_page_lists_my_preferences_only(logged_in, user, other_user):
    entry_of(user, "bullet points, brief")
    entry_of(other_user, "formal, long")
    page = logged_in.get("/me")
    assert page.status_code == 200
    assert b"bullet points, brief" in page.content and b"formal, long" not in page.content
    assert b"no-sliders" in page.content


def test_add_a_preference_and_its_errors(logged_in, user):
    data = {"preference": "casual, with emojis", "context_text": "a forum post", "source": "forum"}
    assert logged_in.post("/me/preferences", data).status_code == 302
    entry = MemoryEntry.objects.get(user=user)
    assert (entry.preference, entry.origin) == ("casual, with emojis", "user")
    empty = logged_in.post("/me/preferences", {**data, "preference": "   "})
    assert empty.status_code == 400 and b"This field is required" in empty.content
    long = logged_in.post("/me/preferences", {**data, "preference": "x" * 501})
    assert long.status_code == 400 and b"at most 500 characters" in long.content
    no_context = logged_in.post("/me/preferences", {**data, "context_text": ""})
    assert no_context.status_code == 400
    bad_source = logged_in.post("/me/preferences", {**data, "source": "x" * 80})
    assert bad_source.status_code == 400 and b"Select a valid choice" in bad_source.content
    assert MemoryEntry.objects.count() == 1


def test_correct_and_delete_a_learned_preference(logged_in, user, other_user):
    entry = entry_of(user)
    response = logged_in.post(
        f"/me/preferences/{entry.pk}", {f"e{entry.pk}-preference": "prose, brief"}
    )
    assert response.status_code == 302
    entry.refresh_from_db()
    assert (entry.preference, entry.origin) == ("prose, brief", "user")
    bad = logged_in.post(f"/me/preferences/{entry.pk}", {f"e{entry.pk}-preference": ""})
    assert bad.status_code == 400 and b"This field is required" in bad.content
    theirs = entry_of(other_user)
    assert logged_in.post(f"/me/preferences/{theirs.pk}/delete").status_code == 404
    assert logged_in.post(f"/me/preferences/{entry.pk}/delete").status_code == 302
    assert list(MemoryEntry.objects.all()) == [theirs]


def test_persona_form(logged_in, user):
    data = {"text": "I teach primary school.", "attributes": "role: teacher\ntone: casual"}
    assert logged_in.post("/me/persona", data).status_code == 302
    persona = PersonaProfile.objects.get(user=user)
    assert persona.attributes == {"role": "teacher", "tone": "casual"}
    bad = logged_in.post("/me/persona", {**data, "attributes": "no colon here"})
    assert bad.status_code == 400 and "Line 1 is not" in bad.content.decode()
    page = logged_in.get("/me")
    assert b"role: teacher" in page.content


def test_sliders(logged_in, user):
    PreferenceVector.objects.create(
        name="format-bullets-vs-prose", attribute="format", positive="bullets", negative="prose",
        base_model="m", base_fingerprint="f", rank=8, positive_path="p", negative_path="n",
    )  # fmt: skip
    page = logged_in.get("/me")
    assert b'type="range"' in page.content and b"prose \xe2\x86\x94 bullets" in page.content
    assert logged_in.post("/me/sliders", {"format-bullets-vs-prose": "1.5"}).status_code == 302
    assert PreferenceCoefficient.objects.get(user=user).eta == 1.5
    for bad in ["9", "nan", "inf", "abc", ""]:
        response = logged_in.post("/me/sliders", {"format-bullets-vs-prose": bad})
        assert response.status_code == 400, bad
    too_big = logged_in.post("/me/sliders", {"format-bullets-vs-prose": "-9"})
    assert "|η| must be at most 2.0" in too_big.content.decode()  # the service's message
    assert PreferenceCoefficient.objects.get(user=user).eta == 1.5


def test_a_replaced_preference_is_shown_dimmed_and_restored(logged_in, user, other_user):
    newer = entry_of(user, "prose")
    older = entry_of(user, "bullet points, brief")
    MemoryEntry.objects.filter(pk=older.pk).update(
        superseded_by=newer, superseded_at="2026-06-02T14:05:00Z"
    )
    page = logged_in.get("/me").content.decode()
    assert 'class="memory-entry superseded"' in page
    assert f"Replaced by #{newer.pk} on 2026-06-02 (a newer preference for similar texts)" in page
    assert f'action="/me/preferences/{older.pk}/restore"' in page
    assert f'action="/me/preferences/{newer.pk}/restore"' not in page  # active: nothing to restore
    response = logged_in.post(f"/me/preferences/{older.pk}/restore", {"return_to": "/me"})
    assert response.status_code == 302 and response.url == f"/me#entry-{older.pk}"
    older.refresh_from_db()
    assert (older.superseded_by_id, older.superseded_at) == (None, None)
    again = logged_in.post(f"/me/preferences/{older.pk}/restore", follow=True)
    assert "was not replaced by a newer one" in again.content.decode()
    theirs = entry_of(other_user)
    assert logged_in.post(f"/me/preferences/{theirs.pk}/restore").status_code == 404
    assert logged_in.get(f"/me/preferences/{older.pk}/restore").status_code == 405

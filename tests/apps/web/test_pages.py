"""The web UI through Django's test client: pages, feedback forms, field errors, 404s, drafts."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from apps.feedback.models import Edit, Interaction, Rating
from apps.web import generation
from core.errors import unavailable
from tests.support.factories import EditFactory, InteractionFactory

pytestmark = pytest.mark.django_db

OUTPUT = "The council met on Monday and approved the new tram line."
EDITED = "- Council met Monday\n- Tram line approved"


@pytest.fixture
def interaction(user):
    return InteractionFactory(user=user, output=OUTPUT)


def test_pages_ask_anonymous_visitors_to_log_in(client):
    for url in ["/", "/ask", "/me", "/my-data", "/history", "/i/1"]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/login"), url


def test_log_in_and_out(client, user):
    page = client.get("/login")
    assert page.status_code == 200 and b'name="password"' in page.content
    bad = client.post("/login", {"username": user.username, "password": "wrong"})
    assert bad.status_code == 200 and b"correct username and password" in bad.content
    ok = client.post("/login", {"username": user.username, "password": "correct horse battery"})
    assert ok.status_code == 302 and client.get("/ask").status_code == 200
    assert client.post("/logout").status_code == 302
    assert client.get("/ask").status_code == 302


def test_ask_calls_the_generation_service_and_opens_the_text(logged_in, user, monkeypatch):
    seen = {}

    def fake_generate(who, messages, n=1, **params):  # isolates the form from the service
        seen.update(messages=messages, n=n, params=params)
        made = [InteractionFactory(user=who, output=f"candidate {k}") for k in range(n)]
        return SimpleNamespace(interaction_ids=[i.pk for i in made], attune={})  # a Completion

    monkeypatch.setattr(generation.services, "generate", fake_generate)
    data = {"mode": "task", "task": "summarize", "source": "news", "context": "The council met."}
    response = logged_in.post("/ask", data)
    newest = Interaction.objects.owned_by(user).first()
    assert response.status_code == 302 and response["Location"] == f"/i/{newest.pk}"
    assert seen["params"] == {} and seen["n"] == 1
    assert seen["messages"] == [
        {"role": "user", "content": "Summarize the following news item.\n\nThe council met."}
    ]
    pair = logged_in.post("/compare", {"mode": "chat", "message": "Write a greeting"})
    assert pair.status_code == 302 and pair["Location"].startswith("/compare/")
    page = logged_in.get(pair["Location"])
    assert b"candidate 0" in page.content and b"candidate 1" in page.content
    chosen = logged_in.post(pair["Location"] + "/choose", {"choice": "b"})
    assert chosen.status_code == 302
    assert user.feedback_comparison_set.get().choice == "b"
    bad = logged_in.post(pair["Location"] + "/choose", {"choice": "c"})
    assert bad.status_code == 400 and b"Select a valid choice" in bad.content


def serving_down(*args, **kwargs):
    raise unavailable("The generation service at http://127.0.0.1:1 is not reachable.")


def test_a_generation_error_is_shown_on_the_form(logged_in, monkeypatch):
    monkeypatch.setattr(generation.services, "generate", serving_down)
    response = logged_in.post("/ask", {"mode": "chat", "message": "Hello there"})
    assert response.status_code == 400
    assert b"is not reachable" in response.content and b"Hello there" in response.content


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"mode": "task", "task": "summarize"}, "context", "Paste the text"),
        ({"mode": "chat"}, "message", "Write a message"),
        ({"mode": "task", "task": "poem", "context": "x"}, "task", "Select a valid choice"),
        ({"mode": "chat", "message": "a\x00b"}, "message", "Null characters are not allowed"),
        ({"mode": "chat", "message": "x" * 40_000}, "message", "at most 32000 characters"),
        ({"mode": "zzz"}, "mode", "Select a valid choice"),
    ],
)
def test_ask_form_errors_show_in_place(logged_in, monkeypatch, data, field, message):
    def must_not_run(*args, **kwargs):
        pytest.fail("an invalid form must not reach generation")

    monkeypatch.setattr(generation.services, "generate", must_not_run)
    response = logged_in.post("/ask", data)
    assert response.status_code == 400
    assert message in response.context["form"].errors[field][0]
    assert message.encode() in response.content


def test_rate_with_thumbs_and_stars(logged_in, user, interaction):
    assert logged_in.post(f"/i/{interaction.pk}/rate", {"rating": "up"}).status_code == 302
    assert Rating.objects.get(interaction=interaction).thumbs_up is True
    logged_in.post(f"/i/{interaction.pk}/rate", {"rating": "4"})
    rating = Rating.objects.get(interaction=interaction)
    assert (rating.stars, rating.thumbs_up) == (4, None)
    page = logged_in.get(f"/i/{interaction.pk}")
    assert b'value="4" data-key="4" aria-pressed="true"' in page.content
    bad = logged_in.post(f"/i/{interaction.pk}/rate", {"rating": "9"})
    assert bad.status_code == 400 and b"Select a valid choice" in bad.content


def test_edit_preview_then_save(logged_in, user, interaction, monkeypatch):
    monkeypatch.setattr("apps.memory.services.schedule_inference", lambda edit: None)
    url = f"/i/{interaction.pk}/edit"
    preview = logged_in.post(url, {"edited": EDITED, "action": "preview"})
    assert preview.status_code == 200 and not Edit.objects.exists()
    assert b"<ins>" in preview.content and b"<del>" in preview.content
    assert preview.context["distance"] > 0
    saved = logged_in.post(url, {"edited": EDITED, "action": "save"})
    assert saved.status_code == 302 and saved["Location"].endswith("#learned")
    edit = Edit.objects.get()
    assert (edit.edited, edit.original, edit.interaction) == (EDITED, OUTPUT, interaction)
    page = logged_in.get(f"/i/{interaction.pk}")
    assert EDITED.encode() in page.content  # the editor starts from the latest edit
    empty = logged_in.post(url, {"edited": "", "action": "save"})
    assert empty.status_code == 400 and b"This field is required" in empty.content


def test_diff_preview_json(logged_in, interaction):
    response = logged_in.post(
        f"/i/{interaction.pk}/diff", {"edited": EDITED}, HTTP_ACCEPT="application/json"
    )
    body = response.json()
    assert response.status_code == 200 and body["distance"] > 0 and "<ins>" in body["html"]
    bad = logged_in.post(
        f"/i/{interaction.pk}/diff", {"edited": "x" * 9000}, HTTP_ACCEPT="application/json"
    )
    assert bad.status_code == 400 and "edited" in bad.json()["errors"]


def test_other_users_and_unknown_ids_answer_404(logged_in, other_user):
    theirs = InteractionFactory(user=other_user)
    for url in [f"/i/{theirs.pk}", f"/i/{2**63 - 1}", "/i/99999999999999999999"]:
        assert logged_in.get(url).status_code == 404, url
    assert logged_in.post(f"/i/{theirs.pk}/rate", {"rating": "up"}).status_code == 404
    assert (
        logged_in.post(f"/i/{theirs.pk}/edit", {"edited": "x", "action": "save"}).status_code == 404
    )
    assert not Rating.objects.exists() and not Edit.objects.exists()


def test_an_expired_session_keeps_the_draft(client, user, interaction):
    url = f"/i/{interaction.pk}/edit"
    form = {"form": f"edit-{interaction.pk}", "return_to": f"/i/{interaction.pk}", "edited": EDITED}
    response = client.post(url, {**form, "action": "save"})
    assert response.status_code == 302
    assert response["Location"] == f"/login?next=/i/{interaction.pk}"
    login_page = client.get(response["Location"])
    assert b"What you typed is kept" in login_page.content
    client.post("/login", {"username": user.username, "password": "correct horse battery"})
    page = client.get(f"/i/{interaction.pk}")
    assert page.context["edit_form"].initial["edited"] == EDITED and page.context["diff"]
    assert not Edit.objects.exists()  # nothing was saved behind the person's back
    again = client.get(f"/i/{interaction.pk}")  # the draft is used once
    assert again.context["edit_form"].initial["edited"] == OUTPUT


def test_an_expired_session_on_a_script_request_is_a_json_401(client, interaction):
    response = client.post(
        f"/i/{interaction.pk}/diff", {"edited": "x"}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 401 and response.json()["login"] == "/login"


def test_return_to_must_stay_on_this_site(client):
    response = client.post("/ask", {"form": "ask", "return_to": "https://evil.example/x"})
    assert response["Location"] == "/login?next=/"


def test_next_goes_to_texts_still_waiting_for_feedback(logged_in, user):
    older = InteractionFactory(user=user)
    judged = InteractionFactory(user=user)
    EditFactory(interaction=judged)
    newest = InteractionFactory(user=user)
    assert logged_in.get("/next")["Location"] == f"/i/{newest.pk}"
    assert logged_in.get(f"/next?after={newest.pk}")["Location"] == f"/i/{older.pk}"
    assert logged_in.get(f"/next?after={older.pk}")["Location"] == "/ask"
    assert logged_in.get("/next?after=abc")["Location"] == f"/i/{newest.pk}"
    assert logged_in.get("/history?page=zzz").status_code == 200


def test_my_data_export_and_delete_everything(logged_in, user, interaction, other_user):
    InteractionFactory(user=other_user)
    export = logged_in.get("/my-data/export")
    rows = [json.loads(line) for line in b"".join(export.streaming_content).splitlines()]
    assert rows[0]["fields"]["username"] == user.username
    assert any(r["model"] == "feedback.interaction" for r in rows)
    unconfirmed = logged_in.post("/my-data/delete", {"confirm": "yes"})
    assert unconfirmed.status_code == 400 and b"Type DELETE" in unconfirmed.content
    assert Interaction.objects.filter(user=user).exists()
    done = logged_in.post("/my-data/delete", {"confirm": "delete"})
    assert done.status_code == 302
    assert not Interaction.objects.filter(user=user).exists()
    assert Interaction.objects.filter(user=other_user).exists()
    user.refresh_from_db()  # the account stays


def test_nothing_a_form_can_send_is_a_server_error(logged_in, user, interaction, monkeypatch):
    monkeypatch.setattr("apps.memory.services.schedule_inference", lambda edit: None)
    monkeypatch.setattr(generation.services, "generate", serving_down)
    entry = user.memory_memoryentry_set.create(
        context_text="c", preference="p", origin="user", source=""
    )
    other = InteractionFactory(user=user)
    posts = [
        "/ask", "/compare", f"/i/{interaction.pk}/rate", f"/i/{interaction.pk}/edit",
        f"/i/{interaction.pk}/diff", f"/compare/{interaction.pk}/{other.pk}/choose",
        "/me/preferences", f"/me/preferences/{entry.pk}", "/me/persona", "/me/sliders",
        "/my-data/delete", "/login",
    ]  # fmt: skip
    nasty = ["\x00", "x" * 100_000, "\ud800".encode("utf-8", "surrogatepass").decode("latin-1"),
             "-1", "1e309", "nan", "[]", "{}", "<script>", "9" * 30]  # fmt: skip
    fields = ["mode", "task", "source", "context", "message", "rating", "edited", "action",
              "choice", "preference", "context_text", f"e{entry.pk}-preference", "text",
              "attributes", "confirm", "username", "password", "form", "return_to"]  # fmt: skip
    for url in posts:
        for value in nasty:
            response = logged_in.post(url, {name: value for name in fields})
            assert response.status_code < 500, (url, value[:20])
    for url in ["/history?page=-1", "/next?after=99999999999999999999", "/i/0", "/compare/1/1"]:
        assert logged_in.get(url).status_code < 500, url
    assert not Edit.objects.exists()  # "action" was never a valid choice

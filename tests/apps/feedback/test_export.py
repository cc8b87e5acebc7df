"""/api/export/{dpo,kto}: streamed TRL-ready JSONL, per user and (staff) for everyone."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.http import StreamingHttpResponse
from django.utils import timezone

from apps.feedback.models import Edit, Interaction, Rating
from tests.support.factories import (
    ComparisonFactory,
    EditFactory,
    InteractionFactory,
    RatingFactory,
)

pytestmark = pytest.mark.django_db


def rows(response) -> list[dict]:
    assert response.status_code == 200, response.content
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "application/x-ndjson"
    assert response["Content-Disposition"].startswith("attachment; filename=")
    text = b"".join(response.streaming_content).decode()
    return [json.loads(line) for line in text.splitlines()]


def test_dpo_rows_from_edits_and_comparisons(client_for, user):
    interaction = InteractionFactory(user=user, prompt="Greet.", output="Dear team.")
    EditFactory(interaction=interaction, edited="Hi all! 👋")
    EditFactory(interaction=interaction, edited="Dear team.")  # a no-op says nothing
    ComparisonFactory(user=user, prompt="P", response_a="A", response_b="B", choice="a")
    ComparisonFactory(user=user, prompt="Q", response_a="A", response_b="B", choice="b")
    ComparisonFactory(user=user, choice="tie")
    assert rows(client_for(user).get("/api/export/dpo")) == [
        {"prompt": "Greet.", "chosen": "Hi all! 👋", "rejected": "Dear team."},
        {"prompt": "P", "chosen": "A", "rejected": "B"},
        {"prompt": "Q", "chosen": "B", "rejected": "A"},
    ]


def test_kto_rows_from_ratings(client_for, user):
    ratings = [(True, None, "t-up"), (False, None, "t-down"), (None, 5, "five"),
               (None, 3, "three"), (None, 1, "one")]  # fmt: skip
    for thumbs_up, stars, output in ratings:
        RatingFactory(
            interaction__user=user, interaction__prompt="P", interaction__output=output,
            thumbs_up=thumbs_up, stars=stars,
        )  # fmt: skip
    assert rows(client_for(user).get("/api/export/kto")) == [
        {"prompt": "P", "completion": "t-up", "label": True},
        {"prompt": "P", "completion": "t-down", "label": False},
        {"prompt": "P", "completion": "five", "label": True},
        {"prompt": "P", "completion": "one", "label": False},
    ]


def test_exports_are_the_callers_own_unless_staff_ask_for_all(
    client_for, user, other_user, staff_user
):
    RatingFactory(interaction__user=user, interaction__output="mine")
    RatingFactory(interaction__user=other_user, interaction__output="theirs")
    EditFactory(interaction__user=other_user)
    client = client_for(user)
    assert [r["completion"] for r in rows(client.get("/api/export/kto"))] == ["mine"]
    assert [r["completion"] for r in rows(client.get("/api/export/kto?all=1"))] == ["mine"]
    assert rows(client.get(f"/api/export/kto?user_id={other_user.pk}")) == []
    assert rows(client.get("/api/export/dpo?all=true")) == []

    staff = client_for(staff_user)
    assert rows(staff.get("/api/export/kto")) == []
    assert sorted(r["completion"] for r in rows(staff.get("/api/export/kto?all=1"))) == [
        "mine", "theirs",
    ]  # fmt: skip
    assert [
        r["completion"] for r in rows(staff.get(f"/api/export/kto?user_id={other_user.pk}"))
    ] == ["theirs"]
    assert len(rows(staff.get("/api/export/dpo?all=1"))) == 1


def test_exports_filter_by_source_and_date(client_for, user):
    old = EditFactory(interaction__user=user, interaction__source="news", edited="old news")
    Edit.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=30))
    EditFactory(interaction__user=user, interaction__source="email", edited="new email")
    ComparisonFactory(user=user, source="email", response_b="new comparison")
    client = client_for(user)
    chosen = [r["chosen"] for r in rows(client.get("/api/export/dpo?source=email"))]
    assert chosen == ["new email", "new comparison"]
    since = (timezone.now() - timedelta(days=1)).isoformat()
    recent = rows(client.get("/api/export/dpo", {"created_after": since, "source": "news"}))
    assert recent == []
    before = rows(client.get("/api/export/dpo", {"created_before": since}))
    assert [r["chosen"] for r in before] == ["old news"]


@pytest.mark.parametrize(
    ("query", "field"),
    [("created_after=soon", "created_after"), ("all=maybe", "all"), ("user_id=x", "user_id")],
)
def test_bad_export_parameters_are_400s_naming_them(client_for, user, query, field):
    for kind in ("dpo", "kto"):
        response = client_for(user).get(f"/api/export/{kind}?{query}")
        assert response.status_code == 400
        assert field in response.json()


def test_export_accepts_a_jsonl_accept_header(client_for, user):
    RatingFactory(interaction__user=user)
    response = client_for(user).get("/api/export/kto", HTTP_ACCEPT="application/x-ndjson")
    assert len(rows(response)) == 1
    bad = client_for(user).get(
        "/api/export/kto?created_after=x", HTTP_ACCEPT="application/x-ndjson"
    )
    assert bad.status_code == 400 and "created_after" in json.loads(bad.content)


def test_export_needs_authentication(api_client):
    assert api_client.get("/api/export/dpo").status_code == 401
    assert api_client.get("/api/export/kto").status_code == 401


def test_a_large_export_streams_in_chunks(client_for, user):
    interactions = Interaction.objects.bulk_create(
        [Interaction(user=user, prompt=f"P{n}", output="word " * 500) for n in range(60)]
    )
    Rating.objects.bulk_create([Rating(user=user, interaction=i, stars=5) for i in interactions])
    response = client_for(user).get("/api/export/kto")
    chunks = list(response.streaming_content)
    assert len(chunks) >= 2  # about 150 kB, sent in 64 kB chunks
    assert b"".join(chunks).count(b"\n") == 60

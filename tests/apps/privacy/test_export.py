"""The my-data export written by PostgreSQL: byte for byte what the Python encoder wrote before,
for awkward texts, numbers, times and JSON, streamed with the account line first."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.test.utils import CaptureQueriesContext
from pgvector.django import VectorField

from apps.accounts.models import User
from apps.adapters.models import FitJob
from apps.feedback.models import Interaction
from apps.memory.models import MemoryEntry
from apps.privacy.selectors import ACCOUNT_FIELDS, owned_models, user_data_jsonl
from tests.apps.privacy.support import fill_everything
from tests.support.factories import EditFactory, InteractionFactory

pytestmark = pytest.mark.django_db

AWKWARD = 'quote " backslash \\ \\n tab \t newline \n cr \r \x07 \x01 é 漢字 🙂 \u2028 </script>'


def python_export(user: User) -> bytes:
    """The export as the ORM and ``DjangoJSONEncoder`` wrote it (the format to keep)."""
    encoder = DjangoJSONEncoder(ensure_ascii=False)
    account = User.objects.filter(pk=user.pk).values(*ACCOUNT_FIELDS).get()
    lines = [encoder.encode({"model": "accounts.user", "fields": account})]
    for model in owned_models():
        columns = [f.attname for f in model._meta.concrete_fields if not isinstance(f, VectorField)]
        for row in model.objects.filter(user=user).order_by("pk").values(*columns):
            lines.append(encoder.encode({"model": model._meta.label_lower, "fields": row}))
    return "".join(line + "\n" for line in lines).encode()


def sql_export(user: User) -> bytes:
    return b"".join(user_data_jsonl(user))


def test_awkward_values_are_written_as_before(user, other_user):
    fill_everything(user, 5)
    fill_everything(other_user, 5)
    interaction = InteractionFactory(
        user=user, prompt=AWKWARD, output=AWKWARD * 3, memory_entry_ids=[1, 2, 9007199254740993],
        preference_coefficients={"b": 1.0, "a": -0.25, "n": [1, 2.5, None, True], "t": AWKWARD},
        messages=[{"role": "user", "content": AWKWARD}], embedding=[0.5] * 384,
    )  # fmt: skip
    InteractionFactory(user=user, prompt="", output="")
    Interaction.objects.filter(pk=interaction.pk).update(
        created_at=datetime(2026, 5, 1, 9, 30, tzinfo=UTC),  # no fraction
        embedded_at=datetime(2026, 5, 1, 9, 30, 0, 500, tzinfo=UTC),  # .000
    )
    edit = EditFactory(interaction=interaction, edited=AWKWARD)
    MemoryEntry.objects.create(
        user=user, context_text=AWKWARD, preference="p", origin="user", edit=edit,
        embedding=[-0.5, 0.5] * 192,
    )  # fmt: skip
    for progress, loss in [(1.0, 0.1), (0.0, None), (-0.0, 123456.789), (0.5, 1e20), (1, 3e-5)]:
        FitJob.objects.create(user=user, progress=progress, loss=loss, error=AWKWARD)

    expected, found = python_export(user), sql_export(user)
    assert found == expected
    assert len(found.splitlines()) > 20 and b'"embedding"' not in found


def test_json_columns_keep_their_values_though_a_number_may_be_spelled_otherwise(user):
    InteractionFactory(user=user, preference_coefficients={"tiny": 1e-07, "big": 1.5e300})
    found = [json.loads(line) for line in sql_export(user).splitlines()]
    expected = [json.loads(line) for line in python_export(user).splitlines()]
    assert found == expected


def test_the_account_line_comes_alone_first_then_whole_lines(user):
    fill_everything(user, 30)
    chunks = list(user_data_jsonl(user))
    assert chunks[0].count(b"\n") == 1 and json.loads(chunks[0])["fields"]["id"] == user.pk
    assert all(chunk.endswith(b"\n") for chunk in chunks)
    records = [json.loads(line) for line in b"".join(chunks).splitlines()]
    assert [r["model"] for r in records[1:]] == sorted(r["model"] for r in records[1:])
    interactions = [r["fields"]["id"] for r in records if r["model"] == "feedback.interaction"]
    assert interactions == sorted(interactions) and len(interactions) == 30


def test_queries_do_not_grow_with_history(
    client_for, user, other_user, django_assert_max_num_queries
):
    fill_everything(other_user, 2)
    fill_everything(user, 200)
    client = client_for(other_user)
    with CaptureQueriesContext(connection) as small:  # the COPY statements are counted too
        b"".join(client.get("/api/my-data").streaming_content)
    copies = [q for q in small.captured_queries if q["sql"].startswith("COPY (SELECT ")]
    assert len(copies) == len(owned_models())
    client = client_for(user)
    with django_assert_max_num_queries(len(small.captured_queries)):
        body = b"".join(client.get("/api/my-data").streaming_content)
    assert body.count(b'"model": "feedback.interaction"') == 200

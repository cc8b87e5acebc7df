"""The DPO/KTO exports written by PostgreSQL (``COPY``): byte for byte what the pair reader and
``DjangoJSONEncoder`` wrote before, for awkward texts and every rule; the first line at once, read
in id order from the primary key (no sort of the whole result); queries that do not grow with the
history."""

from __future__ import annotations

import json
from itertools import chain

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.feedback import selectors, trl_export
from apps.feedback.models import Comparison, Edit, Interaction, Rating
from tests.apps.common.size import fill_history
from tests.support.factories import ComparisonFactory, EditFactory, RatingFactory

pytestmark = pytest.mark.django_db

AWKWARD = (
    'quote " backslash \\ \\n \\\\ tab \t newline \n cr \r \x07 \x01 \x1f \x7f é 漢字 🙂 \u2028 '
    "</script>"
)


def encoded(rows) -> bytes:
    """Rows as the export wrote them before PostgreSQL did (the format to keep)."""
    encoder = DjangoJSONEncoder(ensure_ascii=False)
    return b"".join((encoder.encode(row) + "\n").encode() for row in rows)


def python_dpo(edits, comparisons) -> bytes:
    pairs = chain(selectors.edit_pairs(edits), selectors.comparison_pairs(comparisons))
    return encoded({"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in pairs)


def python_kto(ratings) -> bytes:
    found = selectors.thumbs(ratings)
    return encoded(
        {"prompt": t.prompt, "completion": t.completion, "label": t.label} for t in found
    )


def body(response) -> bytes:
    assert response.status_code == 200, response.content
    return b"".join(response.streaming_content)


def awkward_feedback(user) -> None:
    """Every kind of row the rules keep or leave out, with texts that need escaping."""
    for n, (thumbs_up, stars) in enumerate(
        [(True, None), (False, None), (None, 1), (None, 2), (None, 3), (None, 4), (None, 5)]
    ):
        RatingFactory(
            interaction__user=user, interaction__prompt=f"{AWKWARD} {n}",
            interaction__output=AWKWARD * (n + 1), thumbs_up=thumbs_up, stars=stars,
        )  # fmt: skip
    EditFactory(interaction__user=user, interaction__prompt=AWKWARD, edited=AWKWARD)
    EditFactory(interaction__user=user, interaction__output="same", edited="same")  # no-op
    EditFactory(interaction__user=user, interaction__prompt="", edited="")  # empty texts
    for choice in ("a", "b", "tie"):
        ComparisonFactory(user=user, prompt=AWKWARD, response_a=f"A {AWKWARD}",
                          response_b="B \\", choice=choice)  # fmt: skip
    ComparisonFactory(user=user, response_a="same", response_b="same", choice="a")


def test_exports_are_byte_for_byte_the_pair_readers_rows(client_for, user, other_user):
    fill_history(user.pk, 40)
    awkward_feedback(user)
    awkward_feedback(other_user)
    dpo = body(client_for(user).get("/api/export/dpo"))
    kto = body(client_for(user).get("/api/export/kto"))
    mine = {"user": user}
    expected_dpo = python_dpo(Edit.objects.filter(**mine), Comparison.objects.filter(**mine))
    assert dpo == expected_dpo
    assert kto == python_kto(Rating.objects.filter(**mine))
    assert len(dpo.splitlines()) >= 2 + 2 and len(kto.splitlines()) >= 6 + 6
    assert any(AWKWARD in json.loads(line)["prompt"] for line in dpo.splitlines())


def test_filtered_and_staff_exports_are_the_pair_readers_rows_too(
    client_for, user, other_user, staff_user
):
    fill_history(other_user.pk, 30)
    awkward_feedback(user)
    awkward_feedback(other_user)
    staff = client_for(staff_user)
    everyone = body(staff.get("/api/export/dpo?all=1"))
    assert everyone == python_dpo(Edit.objects.all(), Comparison.objects.all())
    assert body(staff.get("/api/export/kto?all=1")) == python_kto(Rating.objects.all())
    source = Interaction.objects.filter(user=other_user).values_list("source", flat=True)[0]
    ratings = Rating.objects.filter(user=other_user, interaction__source=source)
    named = body(staff.get(f"/api/export/kto?user_id={other_user.pk}&source={source}"))
    assert named == python_kto(ratings) and len(named.splitlines()) >= 2


def test_the_sql_label_is_the_python_label(user):
    """``KTO_LABEL`` (the export) and ``kto_label`` (fits, counters) agree on every rating."""
    cases = [(True, None), (False, None), *((None, stars) for stars in range(1, 6))]
    for thumbs_up, stars in cases:
        RatingFactory(interaction__user=user, thumbs_up=thumbs_up, stars=stars)
    found = Rating.objects.annotate(label=trl_export.KTO_LABEL).values_list(
        "thumbs_up", "stars", "label"
    )
    assert sorted(found, key=str) == sorted(
        ((t, s, selectors.kto_label(t, s)) for t, s in cases), key=str
    )


def test_the_first_line_comes_alone_and_every_chunk_is_whole_lines(user):
    fill_history(user.pk, 1000)
    mine = {"user": user}
    for chunks in (
        list(trl_export.dpo_jsonl(Edit.objects.filter(**mine), Comparison.objects.filter(**mine))),
        list(trl_export.kto_jsonl(Rating.objects.filter(**mine))),
    ):
        assert chunks[0].count(b"\n") == 1 and len(chunks) >= 3
        assert all(chunk.endswith(b"\n") for chunk in chunks)


def test_rows_are_read_in_id_order_from_the_primary_key_without_a_sort(user, other_user):
    """The first byte waits for no sort of the user's joined rows (texts and all): the ids come
    from an index, then the primary key's index yields the rows already in order."""
    fill_history(user.pk, 2000)
    fill_history(other_user.pk, 2000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE feedback_interaction, feedback_edit, feedback_rating, "
                       "feedback_comparison")  # fmt: skip
    mine = {"user": user}
    edits, comparisons = trl_export._dpo_lines(
        Edit.objects.owned_by(user), Comparison.objects.owned_by(user)
    )
    for lines, pkey in [
        (edits, "feedback_edit_pkey"),
        (comparisons, "feedback_comparison_pkey"),
        (trl_export._kto_lines(Rating.objects.filter(**mine)), "feedback_rating_pkey"),
    ]:
        plan = lines.explain()
        assert f"Index Scan using {pkey}" in plan and "Sort" not in plan, plan


@pytest.mark.parametrize("kind", ["dpo", "kto"])
def test_queries_do_not_grow_with_history(client_for, user, other_user, kind):
    fill_history(other_user.pk, 20)
    fill_history(user.pk, 400)
    counts = []
    for who in (other_user, user):
        client = client_for(who)
        with CaptureQueriesContext(connection) as queries:  # the COPY statements are counted
            size = len(body(client.get(f"/api/export/{kind}")))
        copies = [q for q in queries.captured_queries if q["sql"].startswith("COPY (SELECT ")]
        assert len(copies) == (2 if kind == "dpo" else 1)
        counts.append((len(queries.captured_queries), size))
    (small, small_size), (large, large_size) = counts
    assert large == small and large_size > 10 * small_size


@pytest.mark.django_db(transaction=True)
def test_an_abandoned_download_leaves_the_connection_usable(user):
    """A client that goes away mid-download closes the stream inside a COPY: the COPY ends and
    the next query on the connection works (autocommit, as a streamed answer runs)."""
    fill_history(user.pk, 1000)
    stream = trl_export.kto_jsonl(Rating.objects.filter(user=user))
    assert next(stream).count(b"\n") == 1 and next(stream)
    stream.close()
    assert Rating.objects.filter(user=user).count() == 300

"""The TRL export's lines, written by PostgreSQL (``apps.common.streaming``): the same rows as
the pair and thumb readers of ``apps.feedback.selectors``, chosen by the same
``_edit_rows``/``_comparison_rows`` rules and ``KTO_LABEL``, each line spelled as
``DjangoJSONEncoder(ensure_ascii=False)`` spells the row's ``dict``."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain

from django.db.models import BooleanField, Case, F, Q, QuerySet, Value, When

from apps.common.streaming import in_id_order, json_line, jsonl_chunks, queryset_lines
from apps.feedback.models import Comparison, Edit, Rating
from apps.feedback.selectors import (
    KTO_DESIRABLE_STARS,
    KTO_UNDESIRABLE_STARS,
    _comparison_rows,
    _edit_rows,
)

KTO_LABEL = Case(
    When(thumbs_up__isnull=False, then=F("thumbs_up")),
    When(stars__gte=KTO_DESIRABLE_STARS, then=Value(True)),
    When(stars__lte=KTO_UNDESIRABLE_STARS, then=Value(False)),
    default=Value(None),
    output_field=BooleanField(),
)
""":func:`apps.feedback.selectors.kto_label` as SQL, for the export (a test holds the two to the
same answers)."""


def _dpo_lines(edits: QuerySet[Edit], comparisons: QuerySet[Comparison]) -> list[QuerySet]:
    chosen_a = Q(choice=Comparison.Choice.A)
    return [
        _edit_rows(in_id_order(edits), None, None, None).values_list(
            json_line(prompt=F("interaction__prompt"), chosen=F("edited"), rejected=F("original"))
        ),
        _comparison_rows(in_id_order(comparisons), None, None, None).values_list(
            json_line(
                prompt=F("prompt"),
                chosen=Case(When(chosen_a, then=F("response_a")), default=F("response_b")),
                rejected=Case(When(chosen_a, then=F("response_b")), default=F("response_a")),
            )
        ),
    ]


def dpo_jsonl(edits: QuerySet[Edit], comparisons: QuerySet[Comparison]) -> Iterator[bytes]:
    """DPO rows ``{prompt, chosen, rejected}`` as JSON Lines (UTF-8 chunks): the edits' pairs,
    then the comparisons', each in id order (as :func:`edit_pairs` and
    :func:`comparison_pairs` give them)."""
    copied = chain.from_iterable(queryset_lines(q) for q in _dpo_lines(edits, comparisons))
    return jsonl_chunks(copied)


def _kto_lines(ratings: QuerySet[Rating]) -> QuerySet:
    labelled = in_id_order(ratings).alias(label=KTO_LABEL).filter(label__isnull=False)
    return labelled.values_list(
        json_line(
            prompt=F("interaction__prompt"), completion=F("interaction__output"), label=F("label")
        )
    )


def kto_jsonl(ratings: QuerySet[Rating]) -> Iterator[bytes]:
    """KTO rows ``{prompt, completion, label}`` as JSON Lines (UTF-8 chunks): the ratings'
    thumbs in id order (as :func:`thumbs` gives them)."""
    return jsonl_chunks(queryset_lines(_kto_lines(ratings)))

"""Writes for CIPHER memory: learning from edits, and the user's own changes to what was learned.

After an edit is committed, :func:`schedule_inference` queues ``memory.infer_preference``, which
runs :func:`infer_from_edit`: an edit that changed the text teaches the preference the inference
backend reads from it; an edit that changed nothing (distance 0) means the output was accepted, and
the preference that conditioned it is stored. Either way one edit gives at most one entry.

None is lost: the edit is noted as waiting (:class:`PendingInference`) when it is stored, and the
note goes only once it is learned (or teaches nothing). A backend that fails leaves it there with
its failure counted; :func:`sweep_pending` (``memory.sweep_inference``, on the beat schedule)
retries the due ones, so edits whose task gave up, or died with its worker, are learned once the
backend answers again.

An entry's context embedding is the interaction's prompt embedding, copied when the worker has
already computed it, else computed the same way (``apps.common.embeddings``) after commit.

Superseding (the rule: ``apps.memory.cipher.superseding``): once an entry has its embedding (on
insert when it was copied, else when the embedding task stores it) it replaces the contradicting
older entries near its context, in the same transaction, with one UPDATE. :func:`restore` brings a
replaced entry back; forgetting an entry brings back those it replaced.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.common.embeddings import schedule_embedding
from apps.feedback.models import Edit, Interaction
from apps.memory.cipher import Superseding, superseding, taught
from apps.memory.inference import InferenceBackend, InferenceError, backend_from_settings, clip
from apps.memory.models import MemoryEntry, PendingInference
from apps.memory.selectors import rivals_of
from core.errors import InvalidValue, ReferenceNotFound

log = logging.getLogger(__name__)


def check_preference(text: str) -> str:
    """``text`` stripped; :class:`InvalidValue` (field ``preference``) when it is empty or over
    ``ATTUNE_MAX_PREFERENCE_CHARS`` characters."""
    text = text.strip()
    limit = settings.ATTUNE_MAX_PREFERENCE_CHARS
    if len(text) > limit:
        raise InvalidValue(
            "preference", f"A preference has at most {limit} characters; got {len(text)}."
        )
    if not text:
        raise InvalidValue("preference", "A preference cannot be empty.")
    return text


def schedule_inference(edit: Edit) -> None:
    """Note ``edit`` as waiting to be learned, and queue ``memory.infer_preference`` for it once
    the current transaction commits.

    A broker that cannot take the task is logged, not raised: the edit is stored either way, and
    the sweep takes it ``ATTUNE_INFERENCE_SWEEP_AFTER_SECONDS`` later if it is still waiting.
    """
    from apps.memory.tasks import infer_preference

    after = timedelta(seconds=settings.ATTUNE_INFERENCE_SWEEP_AFTER_SECONDS)
    PendingInference.objects.get_or_create(
        edit=edit, defaults={"next_attempt_at": timezone.now() + after}
    )
    edit_id = edit.pk
    transaction.on_commit(lambda: infer_preference.delay(edit_id), robust=True)


def _copy_context(entry: MemoryEntry, interaction: Interaction) -> None:
    """Give ``entry`` the interaction's context, and its embedding when it is already there."""
    entry.context_text = interaction.prompt
    entry.source = entry.source or interaction.source
    current = interaction.embedding_model == settings.ATTUNE_EMBEDDING_MODEL
    if interaction.embedding is not None and current:
        entry.embedding = interaction.embedding
        entry.embedding_model = interaction.embedding_model
        entry.embedding_dim = interaction.embedding_dim
        entry.embedded_at = interaction.embedded_at


def _save_new(entry: MemoryEntry) -> MemoryEntry:
    """Insert ``entry`` (with what it supersedes, when it has its embedding already); an entry
    for the same edit stored meanwhile is returned instead."""
    try:
        with transaction.atomic():
            entry.save()
            if entry.embedding is None:
                schedule_embedding(MemoryEntry)  # it supersedes once embedded
            else:
                supersede(entry)
    except IntegrityError:
        return MemoryEntry.objects.get(edit_id=entry.edit_id)
    return entry


def supersede(entry: MemoryEntry, *, newest: bool = False) -> Superseding:
    """Let a stored, embedded, active ``entry`` replace the contradicting older entries near its
    context (or be replaced by a newer one stored before its embedding came), with one UPDATE;
    call it in the transaction that stored the entry or its embedding. ``newest``: the entry is
    the user's newest word whatever its age (a correction), so no neighbor counts as newer.

    Returns what changed (nothing for an entry without embedding or replaced already).
    """
    if entry.superseded_by_id is not None or entry.embedding is None:
        return Superseding()
    rivals = rivals_of(entry)
    if newest:
        rivals = [replace(rival, newer=False) for rival in rivals]
    written = entry.origin == MemoryEntry.Origin.USER
    decision = superseding(
        entry.preference,
        written,
        rivals,
        settings.ATTUNE_MEMORY_TOP_K,
        settings.ATTUNE_MEMORY_SUPERSEDE_DISTANCE,
    )
    now = timezone.now()
    if decision.superseded_by is not None:
        MemoryEntry.objects.filter(pk=entry.pk).update(
            superseded_by_id=decision.superseded_by, superseded_at=now
        )
        entry.superseded_by_id, entry.superseded_at = decision.superseded_by, now
    elif decision.supersedes:
        MemoryEntry.objects.filter(pk__in=decision.supersedes, superseded_by=None).update(
            superseded_by=entry, superseded_at=now
        )
    return decision


def supersede_embedded(rows: list[MemoryEntry], **_: Any) -> None:
    """What entries whose embedding just came supersede, oldest first (connected to
    ``apps.common.embeddings.embedded``, so it runs in the transaction that stored the vectors).
    """
    for entry in sorted(rows, key=lambda row: row.pk):
        supersede(entry)


def restore(entry: MemoryEntry) -> MemoryEntry:
    """Make a replaced entry active again (retrieved again; it replaces nothing by this).

    :class:`InvalidValue` (field ``superseded_by``) when no newer entry replaced it.
    """
    if entry.superseded_by_id is None:
        raise InvalidValue(
            "superseded_by", f"Entry {entry.pk} was not replaced by a newer one: it is active."
        )
    MemoryEntry.objects.filter(pk=entry.pk).update(superseded_by=None, superseded_at=None)
    entry.superseded_by, entry.superseded_at = None, None
    return entry


def _from_edit(edit: Edit, preference: str, origin: str) -> MemoryEntry:
    entry = MemoryEntry(user_id=edit.user_id, edit=edit, preference=preference, origin=origin)
    _copy_context(entry, edit.interaction)
    return _save_new(entry)


def store_used_preference(edit: Edit) -> MemoryEntry | None:
    """The user accepted an output unedited: remember the preference that conditioned it.

    Nothing is stored when no preference was used (the interaction has none).
    """
    limit = settings.ATTUNE_MAX_PREFERENCE_CHARS
    used = clip(edit.interaction.conditioning_preference.strip(), limit)
    if not used:
        return None
    return _from_edit(edit, used, MemoryEntry.Origin.USED)


def infer_from_edit(edit_id: int, backend: InferenceBackend | None = None) -> MemoryEntry | None:
    """Learn from one edit (see the module docstring); idempotent, one entry per edit.

    Returns the entry, or None when the edit is gone or teaches nothing; either way the edit is
    no longer waiting. A backend that fails raises :class:`apps.memory.inference.InferenceError`,
    nothing is stored, and the failure is counted on the edit's :class:`PendingInference`.
    """
    try:
        entry = _learn(edit_id, backend)
    except InferenceError as err:
        _count_failure(edit_id, err)
        raise
    PendingInference.objects.filter(edit_id=edit_id).delete()
    return entry


def _learn(edit_id: int, backend: InferenceBackend | None) -> MemoryEntry | None:
    edit = Edit.objects.select_related("interaction").filter(pk=edit_id).first()
    if edit is None:
        return None
    if (existing := MemoryEntry.objects.filter(edit_id=edit_id).first()) is not None:
        return existing
    if edit.distance == 0:
        return store_used_preference(edit)
    backend = backend or backend_from_settings()
    inferred = backend.infer([(edit.original, edit.edited)])
    if not inferred.preference:
        return None
    lesson = taught(edit.interaction.conditioning_preference, inferred.preference, backend)
    preference = clip(lesson.preference, settings.ATTUNE_MAX_PREFERENCE_CHARS)
    return _from_edit(edit, preference, MemoryEntry.Origin.INFERRED)


def retry_delay(attempts: int) -> timedelta:
    """How long an edit waits after its ``attempts``-th failure: the sweep's delay, doubled per
    failure, at most ``ATTUNE_INFERENCE_SWEEP_MAX_BACKOFF_SECONDS``."""
    first = settings.ATTUNE_INFERENCE_SWEEP_AFTER_SECONDS
    cap = settings.ATTUNE_INFERENCE_SWEEP_MAX_BACKOFF_SECONDS
    return timedelta(seconds=min(first * 2 ** min(max(attempts - 1, 0), 30), cap))


def _count_failure(edit_id: int, err: InferenceError) -> None:
    """Keep the edit waiting (noted again if its note is gone) and, when the backend was really
    asked, count the failure and push the next try back. A call skipped while the backend rests
    after a failure counts nothing: the edit keeps its place."""
    with transaction.atomic():
        pending = PendingInference.objects.select_for_update().filter(edit_id=edit_id).first()
        if pending is None:
            if not Edit.objects.filter(pk=edit_id).exists():
                return
            pending = PendingInference(edit_id=edit_id, next_attempt_at=timezone.now())
        if err.reason != "skipped":
            pending.attempts += 1
            pending.last_error = err.reason[:32]
            pending.next_attempt_at = timezone.now() + retry_delay(pending.attempts)
        try:
            with transaction.atomic():
                pending.save()
        except IntegrityError:  # the edit was deleted meanwhile: nothing to keep
            return


def sweep_pending(limit: int | None = None, backend: InferenceBackend | None = None) -> int:
    """Learn the due waiting edits, oldest first, at most ``limit``
    (``ATTUNE_INFERENCE_SWEEP_BATCH``); returns how many are no longer waiting.

    The run claims its edits first (their next try moves ``ATTUNE_INFERENCE_SWEEP_AFTER_SECONDS``
    ahead, so a concurrent run skips them and a run that dies gives them back), then learns them
    one by one and stops at the first failure: the backend is down, and the rest wait for the
    next run, not for a back-off. Nothing is claimed while the backend rests after a failure.
    """
    try:
        backend = backend or backend_from_settings()
    except InferenceError as err:
        log.warning("inference sweep skipped: %s", err)
        return 0
    if not backend.available():
        return 0
    claimed = _claim_due(limit or settings.ATTUNE_INFERENCE_SWEEP_BATCH)
    done = 0
    for i, edit_id in enumerate(claimed):
        try:
            infer_from_edit(edit_id, backend)
        except InferenceError as err:
            log.warning("inference sweep stopped at edit %s (%s): %s", edit_id, err.reason, err)
            PendingInference.objects.filter(edit_id__in=claimed[i + 1 :]).update(
                next_attempt_at=timezone.now()
            )  # not tried: due again at the next run
            break
        done += 1
    return done


def _claim_due(limit: int) -> list[int]:
    """The ids of up to ``limit`` due waiting edits, oldest first, leased to this run."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            PendingInference.objects.filter(next_attempt_at__lte=now)
            .select_for_update(skip_locked=True)
            .order_by("edit_id")
            .values_list("edit_id", flat=True)[:limit]
        )
        lease = now + timedelta(seconds=settings.ATTUNE_INFERENCE_SWEEP_AFTER_SECONDS)
        PendingInference.objects.filter(edit_id__in=ids).update(next_attempt_at=lease)
    return ids


def _owned_interaction(user: User, interaction_id: int) -> Interaction:
    interaction = Interaction.objects.owned_by(user).filter(pk=interaction_id).first()
    if interaction is None:
        raise ReferenceNotFound("interaction", f"You have no interaction {interaction_id}.")
    return interaction


def add_preference(
    user: User,
    *,
    preference: str,
    context_text: str = "",
    source: str = "",
    interaction_id: int | None = None,
) -> MemoryEntry:
    """Store a preference the user wrote, for a context given as text or as an interaction.

    With an interaction, its prompt (and embedding, when computed) is the context.
    """
    entry = MemoryEntry(
        user=user,
        preference=check_preference(preference),
        origin=MemoryEntry.Origin.USER,
        context_text=context_text,
        source=source,
    )
    if interaction_id is not None:
        _copy_context(entry, _owned_interaction(user, interaction_id))
    if not entry.context_text.strip():
        raise InvalidValue(
            "context_text", "A preference needs a context: its text or an interaction."
        )
    return _save_new(entry)


@transaction.atomic
def update_preference(entry: MemoryEntry, **changes: Any) -> MemoryEntry:
    """Change an entry's ``preference``, ``context_text`` or ``source``.

    A changed preference text is the user's own from then on (origin ``user``) and, as the
    user's newest word, supersedes contradicting entries near its context; a changed context is
    embedded again.
    """
    if "preference" in changes:
        changes["preference"] = check_preference(changes["preference"])
    changed = [field for field, value in changes.items() if getattr(entry, field) != value]
    if not changed:
        return entry
    for field in changed:
        setattr(entry, field, changes[field])
    if "preference" in changed:
        entry.origin = MemoryEntry.Origin.USER
    if "context_text" in changed:
        entry.clear_embedding()
        schedule_embedding(MemoryEntry)  # it supersedes once embedded again
    entry.save()
    if "preference" in changed:
        supersede(entry, newest=True)
    return entry


@transaction.atomic
def delete_preference(entry: MemoryEntry) -> None:
    """Forget one entry (hard delete); the entries it replaced are active again."""
    MemoryEntry.objects.filter(superseded_by=entry).update(superseded_by=None, superseded_at=None)
    entry.delete()

"""The body of a fit job (the ``adapters.fit_job`` task on a ``gpu``-queue worker; torch).

A job is idempotent: it reads the feedback up to the cutoffs fixed when it was requested, puts its
adapter in the artifact store (content-addressed: a retry that writes the same bytes gets the same
ref), and records its adapter version in one transaction guarded by a unique key, so a worker
killed mid-fit leads to a retry, on this node or another, never to two versions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from django.conf import settings
from peft import PeftModel

from apps.adapters import selectors, services
from apps.adapters.models import AdapterVersion, FitJob
from apps.feedback import selectors as feedback
from core import config
from core.dimensions import dimension
from workers.adapters import evaluate
from workers.adapters.fit import FitSettings, PreferencePair, ThumbExample, fit_dpo, fit_kto
from workers.adapters.storage import AdapterStore, base_fingerprint
from workers.adapters.vectors import fit_vector
from workers.modeling.loader import load_base_model
from workers.serving.prompts import UserContext, render_prompt

log = logging.getLogger(__name__)
HELDOUT_SHARE = 0.2  # of a fit's pairs (or thumbs): scored before promotion, never trained on
Progress = Callable[[float, float | None], None]


def fit_settings() -> FitSettings:
    return FitSettings(**settings.ATTUNE_FIT)


def vector_fit_settings() -> FitSettings:
    """A preference vector pole's settings: the fit's, with ``ATTUNE_VECTOR_FIT`` on top."""
    return FitSettings(**{**settings.ATTUNE_FIT, **settings.ATTUNE_VECTOR_FIT})


def adapter_store() -> AdapterStore:
    return AdapterStore(config.artifact_store(), settings.ATTUNE_ADAPTER_ROOT)


def run_fit_job(job_id: int, on_progress: Progress | None = None) -> dict[str, object]:
    """Run job ``job_id`` to the end; returns a summary for the task result.

    The job is claimed first and its lease held (heartbeats) while it runs
    (:mod:`apps.common.leases`): a duplicate or late message, or one for a finished job, skips;
    an attempt that lost its lease (re-queued as dead, or superseded) stops without writing.
    """
    lease = services.start_job(job_id)
    if lease is None:
        status = FitJob.objects.filter(pk=job_id).values_list("status", flat=True).first()
        reason = "held by another worker" if status == FitJob.Status.RUNNING else "already finished"
        return {"job": job_id, "skipped": reason}
    job = FitJob.objects.select_related("user").get(pk=job_id)

    def progress(fraction: float, loss: float | None) -> None:
        services.report_progress(lease, fraction, loss)
        if on_progress is not None:
            on_progress(fraction, loss)

    with services.held(lease):
        try:
            if job.kind == FitJob.Kind.PREFERENCE_VECTOR:
                return _fit_vector(job, lease, progress)
            return _fit_user_adapter(job, lease, progress)
        except services.LeaseLost:
            log.warning("fit job %s: attempt %s lost its lease; stopping", job_id, lease.attempt)
            return {"job": job_id, "skipped": "lease lost"}
        except Exception as err:
            log.exception("fit job %s failed", job_id)
            services.fail_job(lease, f"{type(err).__name__}: {err}")
            raise


def model_prompt(tokenizer: Any, prompt: str) -> str:
    """A stored prompt as the base model reads it at serving time (``workers.serving.prompts``,
    without the user's memory or persona: the adapter learns what they leave out): for the style
    model, tags + task + context parsed from the instruction; for a chat model, its template."""
    return render_prompt(tokenizer, [{"role": "user", "content": prompt}], UserContext())


def _fit_user_adapter(job: FitJob, lease: services.Lease, progress: Progress) -> dict[str, object]:
    cutoffs = feedback.Cutoffs.of(job)
    pairs = feedback.newest_pairs(user=job.user, upto=cutoffs, limit=settings.ATTUNE_FIT_MAX_PAIRS)
    model, tokenizer = load_base_model()
    fingerprint = base_fingerprint(model)
    cfg = fit_settings()
    pairs = [replace(p, prompt=model_prompt(tokenizer, p.prompt)) for p in pairs]
    if len(pairs) >= settings.ATTUNE_FIT_MIN_PAIRS:
        method = AdapterVersion.Method.DPO
        train, heldout = feedback.split_heldout(pairs, HELDOUT_SHARE)
        result = fit_dpo(
            model, tokenizer, [PreferencePair(p.prompt, p.chosen, p.rejected) for p in train],
            cfg, progress,
        )  # fmt: skip
        held = [PreferencePair(p.prompt, p.chosen, p.rejected) for p in heldout]
        score: Callable[[], float | None] = lambda: (  # noqa: E731
            evaluate.preference_accuracy(result.model, tokenizer, held) if held else None
        )
        counts = {"pairs": len(pairs), "train": len(train), "heldout": len(heldout)}
    else:
        method = AdapterVersion.Method.KTO
        thumbs = [
            replace(t, prompt=model_prompt(tokenizer, t.prompt))
            for t in feedback.thumbs(user=job.user, upto=cutoffs)
        ]
        train, heldout = feedback.split_heldout(thumbs, HELDOUT_SHARE)
        result = fit_kto(
            model, tokenizer, [ThumbExample(t.prompt, t.completion, t.label) for t in train],
            cfg, progress,
        )  # fmt: skip
        held_thumbs = [ThumbExample(t.prompt, t.completion, t.label) for t in heldout]
        with result.model.disable_adapter():
            reference = (
                evaluate.completion_logprobs(result.model, tokenizer, held_thumbs)
                if held_thumbs
                else None
            )
        score = lambda: (  # noqa: E731
            evaluate.thumb_agreement(result.model, tokenizer, held_thumbs, reference)
            if held_thumbs
            else None
        )
        counts = {"thumbs": len(thumbs), "train": len(train), "heldout": len(heldout)}

    peft = result.model
    candidate = score()
    with peft.disable_adapter():
        base = score()
    active_accuracy = _score_active(job, peft, fingerprint, score)
    promote = (
        candidate is not None
        and candidate > (base or 0.0)
        and (active_accuracy is None or candidate > active_accuracy)
    )
    store = adapter_store()
    ref = store.save(peft, "default", fingerprint, method=str(method), job=job.pk)
    lora = peft.peft_config["default"]
    version = services.record_adapter(
        lease,
        promote,
        method=method,
        base_model=_base_model_name(),
        base_fingerprint=fingerprint,
        rank=lora.r,
        target_modules=sorted(lora.target_modules),
        storage_path=ref,
        data_counts=counts,
        training=result.figures(),
        evaluation={
            "metric": "preference_accuracy" if method == "dpo" else "thumb_agreement",
            "candidate": candidate,
            "base": base,
            "active": active_accuracy,
            "promoted": promote,
        },
    )
    return {"job": job.pk, "adapter_version": version.pk, "promoted": promote}


def _score_active(
    job: FitJob,
    peft: PeftModel,
    fingerprint: str,
    score: Callable[[], float | None],
) -> float | None:
    """The held-out score of the user's current active adapter, if it fits this base model."""
    active = selectors.active_version(job.user)
    if active is None or active.base_fingerprint != fingerprint:
        return None
    adapter_store().load(peft, active.storage_path, "active", fingerprint)
    peft.set_adapter("active")
    try:
        return score()
    finally:
        peft.set_adapter("default")
        peft.delete_adapter("active")


def _base_model_name() -> str:
    return config.base_model_name()


def _fit_vector(job: FitJob, lease: services.Lease, progress: Progress) -> dict[str, object]:
    dim = dimension(job.dimension)
    fitted = fit_vector(
        load_base_model, dim, settings.ATTUNE_VECTOR_PAIRS, vector_fit_settings(), progress
    )
    fingerprint = base_fingerprint(fitted.positive.model.get_base_model())
    store = adapter_store()
    paths = {}
    for pole, result in (("positive", fitted.positive), ("negative", fitted.negative)):
        paths[pole] = store.save(
            result.model, "default", fingerprint, dimension=dim.name, pole=pole, job=job.pk
        )
    vector = services.record_vector(
        lease,
        name=dim.name,
        attribute=dim.attribute,
        positive=dim.positive,
        negative=dim.negative,
        base_model=_base_model_name(),
        base_fingerprint=fingerprint,
        rank=fitted.positive.model.peft_config["default"].r,
        positive_path=paths["positive"],
        negative_path=paths["negative"],
        training=fitted.figures(),
    )
    return {"job": job.pk, "vector": vector.pk}

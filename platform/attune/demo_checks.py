"""What ``./attune demo``'s fill waits for, read from the platform's database (selectors only):
each check says whether that story has ended, whether it ended well, and a line for a person.

"Ended" includes the ways it ends without the thing (a failed job, a candidate adapter the
evaluation gate did not promote, too few pairs for a fit), so that the fill says why instead of
waiting out its time.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class Check(NamedTuple):
    finished: bool  # nothing more will happen by waiting
    ok: bool  # … and the thing exists
    text: str


def vector_fit(job_id: int, dimension: str) -> Check:
    from apps.adapters.models import FitJob

    job = FitJob.objects.get(pk=job_id)
    if job.status == FitJob.Status.SUCCEEDED:
        return Check(True, True, f"{dimension} fitted (job {job.pk})")
    if job.status == FitJob.Status.FAILED:
        return Check(True, False, f"the fit of {dimension} failed: {job.error}")
    return Check(False, False, f"job {job.pk} {job.status} ({job.progress:.0%})")


def _accuracy(evaluation: dict[str, Any]) -> str:
    return f"held-out accuracy {evaluation.get('candidate')} vs base {evaluation.get('base')}"


def adapter(user: Any) -> Check:
    """The user's adapter: active, on its way (pairs counted, a fit queued or running), or why
    there is none."""
    from django.conf import settings

    from apps.adapters.models import AdapterVersion, FitJob
    from apps.adapters.selectors import active_version
    from apps.feedback.selectors import new_pair_count

    if (active := active_version(user)) is not None:
        figures = _accuracy(active.evaluation)
        return Check(True, True, f"v{active.version} active ({active.method}, {figures})")
    job = FitJob.objects.filter(user=user, kind=FitJob.Kind.USER_ADAPTER).order_by("-id").first()
    needed = settings.ATTUNE_FIT_TRIGGER_PAIRS
    if job is None:
        pairs = new_pair_count(user, None, needed)
        if pairs < needed:
            return Check(True, False, f"no fit: {pairs} of {needed} pairs (more --rounds)")
        return Check(False, False, f"{pairs} pairs: the fit is being queued")
    if job.is_open:
        return Check(False, False, f"fit job {job.pk} {job.status} ({job.progress:.0%})")
    if job.status == FitJob.Status.FAILED:
        return Check(True, False, f"fit job {job.pk} failed: {job.error}")
    version = AdapterVersion.objects.filter(fit_job=job).first()
    if version is None:
        return Check(True, False, f"fit job {job.pk} made no version")
    return Check(
        True,
        False,
        f"v{version.version} is a candidate: the evaluation gate kept the base "
        f"({_accuracy(version.evaluation)}); the next fit comes with {needed} more pairs, or "
        "promote it on /console/",
    )


def copl_run(run_id: int) -> Check:
    from apps.collab.models import CollabModelVersion

    Status = CollabModelVersion.Status
    run = CollabModelVersion.objects.get(pk=run_id)
    if run.status == Status.FAILED:
        return Check(True, False, f"v{run.version} failed: {run.error}")
    if run.status in (Status.ACTIVE, Status.RETIRED):
        accuracy = run.metrics.get("heldout_accuracy")
        return Check(
            True,
            True,
            f"v{run.version} {run.status}: {run.n_users} users, {run.n_pairs} pairs, "
            f"held-out accuracy {accuracy}",
        )
    stage = f", {run.stage}" if run.stage else ""
    return Check(False, False, f"v{run.version} {run.status} ({run.progress:.0%}{stage})")


def console_plots() -> Check:
    """The overall edit-cost series of /console/plots, computed now (and kept for the page)
    rather than at beat's next refresh."""
    from apps.console.selectors import busiest_editors, mean_cost_per_round

    rounds = mean_cost_per_round(fresh=True)
    if not rounds:
        return Check(True, False, "no edit cost yet")
    editors = len(busiest_editors())
    return Check(True, True, f"edit cost per round over {len(rounds)} rounds, {editors} editors")


def demo_data(user: Any) -> str:
    """What the demo user has for the web UI: texts, feedback, learned preferences."""
    from apps.feedback.models import Comparison, Edit, Interaction, Rating
    from apps.memory.models import MemoryEntry

    texts = Interaction.objects.filter(user=user).count()
    edits = Edit.objects.filter(user=user).count()
    rated = Rating.objects.filter(user=user).count() + Comparison.objects.filter(user=user).count()
    learned = MemoryEntry.objects.filter(user=user).count()
    return (
        f"{user.username} has {texts} texts, {edits} edits, {rated} ratings and comparisons, "
        f"{learned} learned preference{'' if learned == 1 else 's'}"
    )

from __future__ import annotations

from celery import shared_task


@shared_task(bind=True, name="adapters.fit_job", queue="gpu", max_retries=3)
def fit_job(self, job_id: int) -> dict[str, object]:  # noqa: ANN001
    """Fit a user's adapter or a preference vector (see workers.adapters.jobs)."""
    from workers.adapters.jobs import run_fit_job

    def progress(fraction: float, loss: float | None) -> None:
        self.update_state(
            state="PROGRESS", meta={"progress": fraction, "loss": loss, "job": job_id}
        )

    return run_fit_job(job_id, on_progress=progress)


@shared_task(name="adapters.check_fit_trigger", queue="default")
def check_fit_trigger(user_id: int) -> int | None:
    """Queue a fit of the user's adapter when they crossed the threshold of new pairs.

    Sent after an edit or comparison is stored. Returns the new fit job's id, or None (below the
    threshold, a fit already queued or running, or the user gone).
    """
    from apps.accounts.models import User
    from apps.adapters.services import maybe_trigger_fit

    user = User.objects.filter(pk=user_id).first()
    if user is None:
        return None
    job = maybe_trigger_fit(user)
    return job.pk if job is not None else None


@shared_task(name="adapters.reap_jobs", queue="default")
def reap_jobs() -> dict[str, list[int]]:
    """(Beat) re-queue fit jobs whose worker died, fail those out of attempts, re-send lost
    messages; returns the job ids by what was done (see apps.common.leases)."""
    from dataclasses import asdict

    from apps.adapters.services import reap_jobs as reap

    return asdict(reap())

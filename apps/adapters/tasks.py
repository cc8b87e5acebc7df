from __future__ import annotations

from celery import shared_task


@shared_task(bind=True, name="adapters.fit_job", queue="gpu", max_retries=3)
def fit_job(self, job_id: int) -> dict[str, object]:  # noqa: ANN001
    """Fit a user's adapter or a preference vector (see apps.adapters.fitting)."""
    from apps.adapters.fitting import run_fit_job

    def progress(fraction: float, loss: float | None) -> None:
        self.update_state(
            state="PROGRESS", meta={"progress": fraction, "loss": loss, "job": job_id}
        )

    return run_fit_job(job_id, on_progress=progress)

from __future__ import annotations

from celery import shared_task


@shared_task(
    bind=True,
    name="collab.train",
    queue="gpu",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=3,
)
def train(self, version_id: int) -> dict[str, object]:  # noqa: ANN001
    """Train CoPL's GNN and reward model and activate the version (see workers.collab.jobs)."""
    from workers.collab.jobs import run_training

    def progress(fraction: float, stage: str, loss: float | None) -> None:
        self.update_state(
            state="PROGRESS",
            meta={"progress": fraction, "stage": stage, "loss": loss, "version_id": version_id},
        )

    return run_training(version_id, on_progress=progress)


@shared_task(name="collab.check_training_trigger", queue="default")
def check_training_trigger() -> int | None:
    """Queue a CoPL run when ``ATTUNE_COPL_TRIGGER_PAIRS`` new pairs arrived since the last one
    (for a periodic schedule); returns the new run's id, or None."""
    from apps.collab.services import maybe_trigger_training

    run = maybe_trigger_training()
    return run.pk if run is not None else None


@shared_task(name="collab.reap_runs", queue="default")
def reap_runs() -> dict[str, list[int]]:
    """(Beat) re-queue CoPL runs whose worker died, fail those out of attempts, re-send lost
    messages; returns the run ids by what was done (see apps.common.leases)."""
    from dataclasses import asdict

    from apps.collab.services import reap_runs as reap

    return asdict(reap())

"""``./attune manage collab_train``: start a CoPL training run by hand (or from cron)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.collab import services
from apps.collab.models import CollabModelVersion
from core.errors import NotEnoughData


class Command(BaseCommand):
    help = (
        "Train CoPL (GNN user embeddings + personalized reward model) on everyone's feedback and "
        "activate the new version. Queues the run on the gpu queue unless --now."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--now",
            action="store_true",
            help="run the training in this process and wait for it (no worker needed)",
        )
        parser.add_argument(
            "--if-needed",
            action="store_true",
            help="only when ATTUNE_COPL_TRIGGER_PAIRS new pairs arrived since the last run "
            "(for a periodic schedule)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_needed"]:
            run = services.maybe_trigger_training()
            if run is None:
                self.stdout.write("No new CoPL run needed.")
                return
            self.stdout.write(f"Queued {run.label} (id {run.pk}) on the gpu queue.")
            return
        try:
            run, created = services.request_training(
                trigger=CollabModelVersion.Trigger.COMMAND, enqueue=not options["now"]
            )
        except NotEnoughData as err:
            raise CommandError(str(err)) from err
        if not created:
            self.stdout.write(f"{run.label} is already {run.status} (progress {run.progress:.0%}).")
            return
        if not options["now"]:
            self.stdout.write(f"Queued {run.label} (id {run.pk}) on the gpu queue.")
            return
        from workers.collab.jobs import run_training

        def progress(fraction: float, stage: str, loss: float | None) -> None:
            shown = f", loss {loss:.4f}" if loss is not None else ""
            self.stdout.write(f"{fraction:6.1%}  {stage}{shown}")

        summary = run_training(run.pk, on_progress=progress)
        run.refresh_from_db()
        self.stdout.write(
            self.style.SUCCESS(
                f"{run.label} is {summary.get('status')}: {run.n_users} users, "
                f"{run.n_pairs} pairs, held-out accuracy {run.metrics.get('heldout_accuracy')}"
            )
        )

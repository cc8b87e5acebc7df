"""Celery beat runs the CoPL trigger check: the schedule names it, and the task it runs queues a
CoPL run once ``ATTUNE_COPL_TRIGGER_PAIRS`` new pairs arrived (and does nothing at 0)."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings

from apps.collab.models import CollabModelVersion
from apps.collab.tasks import check_training_trigger
from attune.celery import app as celery_app
from tests.support.factories import ComparisonFactory, UserFactory

ENTRY = "copl-check-training-trigger"


def test_beat_checks_the_copl_trigger_on_the_maintenance_queue():
    schedule = celery_app.conf.beat_schedule
    assert ENTRY in schedule
    entry = schedule[ENTRY]
    assert entry["task"] == "collab.check_training_trigger"
    assert entry["task"] in celery_app.tasks  # beat sends a name a worker knows
    assert entry["schedule"] == django_settings.ATTUNE_COPL_TRIGGER_CHECK_SECONDS == 300
    assert entry["options"]["queue"] == "maintenance"  # ./attune run's worker consumes it
    assert 0 < entry["options"]["expires"] <= entry["schedule"]  # no backlog of checks
    assert django_settings.ATTUNE_COPL_TRIGGER_PAIRS == 0  # off unless configured


def comparisons(n_users: int, each: int) -> None:
    for _ in range(n_users):
        user = UserFactory()
        for i in range(each):
            ComparisonFactory(user=user, prompt=f"p{i}", response_a=f"a{i}", response_b=f"b{i}")


@pytest.mark.django_db
def test_the_scheduled_task_queues_a_run_when_the_threshold_is_met(
    settings, django_capture_on_commit_callbacks
):
    settings.ATTUNE_COPL_MIN_PAIRS, settings.ATTUNE_COPL_MIN_USERS = 8, 4
    comparisons(n_users=4, each=3)  # 12 new pairs

    settings.ATTUNE_COPL_TRIGGER_PAIRS = 0
    assert check_training_trigger() is None  # off: nothing, whatever the data
    settings.ATTUNE_COPL_TRIGGER_PAIRS = 13
    assert check_training_trigger() is None  # not enough new pairs yet
    assert not CollabModelVersion.objects.exists()

    settings.ATTUNE_COPL_TRIGGER_PAIRS = 12
    with django_capture_on_commit_callbacks(execute=False) as sent:
        run_id = check_training_trigger()
    run = CollabModelVersion.objects.get(pk=run_id)
    assert run.status == CollabModelVersion.Status.QUEUED
    assert run.trigger == CollabModelVersion.Trigger.THRESHOLD
    assert len(sent) == 1  # the training task goes to the gpu queue once the run is committed
    assert check_training_trigger() is None  # one run is open: the next check adds none

"""A real (tiny) CoPL training run through the Celery task: files, rows, progress, idempotency."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from django_celery_results.models import TaskResult

from apps.collab import services, store
from apps.collab.models import CollabModelVersion, UserEmbedding
from apps.collab.tasks import train
from tests.apps.collab.conftest import make_world, store_pairs, train_now
from workers.collab.jobs import run_training

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_a_run_trains_stores_and_activates_one_version(copl_settings):
    world = make_world()
    run = train_now()

    assert run.status == CollabModelVersion.Status.ACTIVE and run.progress == 1.0
    assert run.attempts == 1 and run.activated_at is not None and run.stage == "done"
    trained_users = {u.pk for users in world.groups.values() for u in users} - set(world.unseen)
    rows = UserEmbedding.objects.filter(version=run)
    assert set(rows.values_list("user_id", flat=True)) == trained_users
    assert run.n_users == len(trained_users) and run.n_pairs + run.n_heldout == len(world.pairs)
    assert run.n_pos_edges > 0 and run.n_neg_edges > 0 and run.n_responses > 0
    vector = rows.first().vector
    assert len(vector) == 64 and abs(sum(x * x for x in vector) - 1.0) < 1e-4
    assert {row.expert for row in rows} <= {0, 1}
    assert run.metrics["train_accuracy"] > 0.7 and run.metrics["heldout_pairs"] == run.n_heldout
    assert set(run.expert_eta) == {str(row.expert) for row in rows}
    assert "format-bullets-vs-prose" in next(iter(run.expert_eta.values()))

    folder = store.version_dir(run)  # from the artifact store; the scratch copy is gone
    assert run.storage_path.startswith("sha256:") and folder.name == run.storage_path[7:]
    assert not store.folder_for(run.version).exists()
    names = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert names == {
        "embeddings/embeddings.safetensors",
        "embeddings/meta.json",
        "reward/adapter.safetensors",
        "reward/config.json",
    }  # safetensors and JSON only: no pickle
    meta = (folder / "embeddings" / "meta.json").read_text()
    assert world.pairs[0].chosen[:40] not in meta  # response texts are stored as hashes

    # the Celery task reported PROGRESS (the result backend holds its last update)
    progress = TaskResult.objects.get(task_id=f"copl-test-{run.pk}")
    assert progress.status == "PROGRESS" and '"stage"' in progress.result

    # a redelivered task changes nothing
    assert train.apply(args=[run.pk]).get()["skipped"] == "already finished"
    assert CollabModelVersion.objects.count() == 1 and rows.count() == run.n_users


def test_an_interrupted_run_is_retried_to_one_version(copl_settings):
    make_world()
    run, created = services.request_training(enqueue=False)
    assert created
    assert services.request_training(enqueue=False) == (run, False)  # open: no second run
    calls = {"n": 0}

    def die_in_reward_training(fraction, stage, loss):
        if stage == "reward":
            calls["n"] += 1
            raise KeyboardInterrupt("worker killed")  # not an Exception: like a lost process

    with pytest.raises(KeyboardInterrupt):
        run_training(run.pk, on_progress=die_in_reward_training)
    run.refresh_from_db()
    assert run.status == "running" and not UserEmbedding.objects.exists() and calls["n"] == 1
    assert run_training(run.pk)["skipped"] == "held by another worker"  # heartbeat still fresh
    CollabModelVersion.objects.filter(pk=run.pk).update(
        heartbeat_at=timezone.now() - timedelta(minutes=5)
    )  # its worker died: the redelivered task takes it over
    seen = []
    run_training(run.pk, on_progress=lambda f, stage, loss: seen.append(f))  # the redelivery
    run.refresh_from_db()
    assert run.status == "active" and run.attempts == 2
    assert seen == sorted(seen) and seen[-1] == pytest.approx(0.99)
    assert CollabModelVersion.objects.count() == 1
    assert UserEmbedding.objects.filter(version=run).count() == run.n_users


def test_a_failed_run_keeps_the_active_version_and_new_pairs_trigger_a_run(
    copl_settings, monkeypatch
):
    world = make_world()
    first = train_now()
    copl_settings.ATTUNE_COPL_REWARD = {
        **copl_settings.ATTUNE_COPL_REWARD, "backbone": "/nonexistent/backbone"
    }  # fmt: skip
    failed, _ = services.request_training(enqueue=False)
    with pytest.raises(Exception, match="nonexistent"):
        run_training(failed.pk)
    failed.refresh_from_db()
    first.refresh_from_db()
    assert failed.status == "failed" and "nonexistent" in failed.error
    assert first.status == "active"  # the active version stays

    monkeypatch.setattr("apps.collab.services._enqueue", lambda run: None)
    copl_settings.ATTUNE_COPL_TRIGGER_PAIRS = 3
    assert services.maybe_trigger_training() is None  # no new pairs since the last good run
    user = world.groups["format=bullets"][0]
    store_pairs(user, [world.pairs[0], world.pairs[1]], seed=1)
    assert services.maybe_trigger_training() is None
    store_pairs(user, [world.pairs[2]], seed=2)
    run = services.maybe_trigger_training()
    assert run is not None and run.trigger == "threshold" and run.version == 3
    assert services.maybe_trigger_training() is None  # one is open


def test_command_trains_in_process_and_explains_too_little_data(copl_settings, capsys):
    with pytest.raises(CommandError, match="at least 16 preference pairs"):
        call_command("collab_train")
    copl_settings.ATTUNE_COPL_TRIGGER_PAIRS = 0
    call_command("collab_train", "--if-needed")
    assert "No new CoPL run needed" in capsys.readouterr().out

    make_world()
    first = train_now()
    call_command("collab_train", "--now")
    out = capsys.readouterr().out
    second = CollabModelVersion.objects.get(version=2)
    first.refresh_from_db()
    assert "copl-v2 is active" in out and "reward" in out
    assert second.status == "active" and first.status == "retired"
    assert second.trigger == "command" and store.version_dir(first).is_dir()

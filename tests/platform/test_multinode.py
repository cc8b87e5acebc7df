"""Attune on several "machines" on one: every process has its own ATTUNE_VAR_DIR and no folder is
shared. They meet only in PostgreSQL (the test database, reached by URL), Redis (the broker) and
an S3 API server (moto, the artifact store). Two gpu-queue workers and two serving replicas; this
test process is the web node (ATTUNE_SERVING_URLS names both replicas).

The workers and replicas run the commands of deploy/compose.yaml. A fit that runs on one worker
node is served by a replica that never saw its files; the base model itself comes from the store
(``ATTUNE_BASE_MODEL=sha256:…``), so every node loads the same weights and the adapter's
fingerprint matches everywhere.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from celery import Celery

from apps.adapters import services as adapters
from apps.adapters.models import AdapterVersion
from apps.generation import client
from apps.generation import services as generation
from core import config
from tests.support.deploy import command_for
from tests.support.factories import EditFactory, InteractionFactory, UserFactory
from tests.support.processes import (
    REDIS_URL,
    ROOT,
    database_url_for_tests,
    project_env,
    stop,
    wait_for_other_sessions_to_close,
)
from tests.support.s3 import s3_bucket, s3_endpoint  # noqa: F401 (fixtures)
from tests.support.serving import start_serving, wait_for_its_sessions_to_close
from tests.support.style_models import build_tiny_style_model

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
KEY = "multinode-serving-key"
SECRET = "multinode-secret-key"


@contextlib.contextmanager
def gpu_worker(name: str, var: Path, **settings: str) -> Iterator[subprocess.Popen]:
    """compose.yaml's ``name`` service (a gpu-queue worker), as a node of its own (its own var
    dir; a worker name unique to this test run)."""
    command = [*command_for(name), "--loglevel", "WARNING"]
    command[command.index("-n") + 1] = f"{name}-{os.getpid()}@%h"
    env = project_env(
        DATABASE_URL=database_url_for_tests(),
        CELERY_BROKER_URL=REDIS_URL,
        ATTUNE_VAR_DIR=str(var),
        DJANGO_SECRET_KEY=SECRET,
        **settings,
    )
    proc = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    try:
        yield proc
    finally:
        stop(proc)


def serving_command(name: str) -> Callable[[int], list[str]]:
    """compose.yaml's serving replica ``name``, on this machine's loopback and a free port."""
    return lambda port: command_for(name, **{"0.0.0.0": "127.0.0.1", "8300": str(port)})


def cached(var: Path) -> set[str]:
    """The artifact digests in a node's cache (ATTUNE_ARTIFACT_CACHE_DIR under its var dir)."""
    cache = var / "cache" / "artifacts"
    return {p.name for p in cache.iterdir() if len(p.name) == 64} if cache.is_dir() else set()


@pytest.fixture
def nodes(tmp_path: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:  # noqa: F811
    """One var dir per node; the artifact store is the S3 bucket for every process."""
    monkeypatch.setenv("ATTUNE_ARTIFACT_STORE", f"s3://{s3_bucket}")
    monkeypatch.setenv("ATTUNE_VAR_DIR", str(tmp_path / "web"))
    names = ("web", "builder", "gpu-1", "gpu-2", "serving-1", "serving-2")
    for name in names:
        (tmp_path / name).mkdir()
    return {name: (tmp_path / name) for name in names}


def test_a_fit_on_one_node_is_served_by_a_replica_that_never_saw_its_files(
    nodes, settings, monkeypatch
):
    built = build_tiny_style_model(nodes["builder"])  # built once, on one node
    base_ref = config.artifact_store().put(built)
    shared = {"ATTUNE_BASE_MODEL": base_ref}  # the store itself comes from the environment

    user = UserFactory()
    for i in range(10):  # enough preference pairs for a DPO fit
        interaction = InteractionFactory(user=user, output=f"A long answer number {i}.")
        EditFactory(user=user, interaction=interaction, edited=f"- short {i}")
    monkeypatch.setattr(adapters, "_enqueue", lambda job: None)  # sent below, through Redis
    job, _ = adapters.request_fit(user)

    sender = Celery("multinode-web", broker=REDIS_URL, backend="django-db")
    replicas = [
        start_serving(nodes[name], KEY, SECRET, command=serving_command(name), **shared)
        for name in ("serving-1", "serving-2")
    ]
    try:
        with (
            gpu_worker("worker-gpu-1", nodes["gpu-1"], **shared),
            gpu_worker("worker-gpu-2", nodes["gpu-2"], **shared),
        ):
            result = sender.send_task("adapters.fit_job", args=[job.pk], queue="gpu")
            summary = result.get(timeout=240)
        version = AdapterVersion.objects.get(fit_job=job)
        assert version.storage_path.startswith("sha256:"), summary
        adapter = version.storage_path.removeprefix("sha256:")
        fitted_on = [n for n in ("gpu-1", "gpu-2") if (nodes[n] / "cache" / "artifacts").is_dir()]
        assert len(fitted_on) == 1  # exactly one worker node ran the fit (and fetched the model)
        assert not any(any((nodes[n] / "adapters").glob("**/*.safetensors")) for n in nodes)
        adapters.promote(version)

        for replica in replicas:
            replica.wait_until_up()
        assert all(adapter not in cached(nodes[n]) for n in ("serving-1", "serving-2"))
        settings.ATTUNE_SERVING_URLS = [r.url for r in replicas]
        settings.ATTUNE_SERVING_KEY = KEY
        completion = generation.generate(user, [{"role": "user", "content": "Hello there."}])
        assert completion.attune["adapter_version"] == version.label
        served_by = [r.url for r, n in zip(replicas, ("serving-1", "serving-2"), strict=True)
                     if adapter in cached(nodes[n])]  # fmt: skip
        home = client.rendezvous_order(user.pk, settings.ATTUNE_SERVING_URLS)[0]
        assert served_by == [home]  # the user's home replica fetched it from the store
    finally:
        for replica in replicas:
            replica.stop()
        sender.close()
        wait_for_its_sessions_to_close()
        wait_for_other_sessions_to_close()


def test_a_copl_version_trained_on_one_node_is_used_by_the_web_on_another(
    nodes, settings, monkeypatch, tmp_path
):
    from apps.collab import selectors, store
    from apps.collab import services as collab
    from tests.apps.collab.conftest import make_world
    from tests.workers.collab.conftest import tiny_bert, tiny_tokenizer

    backbone = tmp_path / "backbone"  # a tiny reward backbone, shared through the store
    tokenizer = tiny_tokenizer()
    tiny_bert(len(tokenizer)).save_pretrained(backbone)
    tokenizer.save_pretrained(backbone)
    small = {
        "ATTUNE_COPL_BACKBONE": config.artifact_store().put(backbone),
        "ATTUNE_COPL_MIN_PAIRS": "16", "ATTUNE_COPL_DEVICE": "cpu", "ATTUNE_COPL_EXPERTS": "2",
        "ATTUNE_COPL_GNN_EPOCHS": "60", "ATTUNE_COPL_REWARD_LAYERS": "1",
        "ATTUNE_COPL_HELDOUT_SHARE": "0.2", "OMP_NUM_THREADS": "1",
    }  # fmt: skip
    settings.ATTUNE_COPL_MIN_PAIRS = 16
    world = make_world()
    run, _ = collab.request_training(enqueue=False)

    sender = Celery("multinode-web", broker=REDIS_URL, backend="django-db")
    try:
        with gpu_worker("worker-gpu-1", nodes["gpu-1"], **small):
            sender.send_task("collab.train", args=[run.pk], queue="gpu").get(timeout=240)
    finally:
        sender.close()
        wait_for_other_sessions_to_close()
    run.refresh_from_db()
    assert run.status == "active" and run.storage_path.startswith("sha256:")
    digest = run.storage_path.removeprefix("sha256:")
    assert not any((nodes["gpu-1"] / "collab").glob("**/*.safetensors"))  # published, not kept

    seen = world.seen(next(iter(world.groups)))[0]
    assert selectors.user_embedding(seen)[1] == "trained"
    artifact = store.embeddings_of(run)  # the web node fetches the version's files
    assert seen.pk in artifact.user_ids and digest in cached(nodes["web"])

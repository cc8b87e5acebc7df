"""deploy/: the compose file runs Attune as on several machines, with the settings that
tests/platform/test_multinode.py exercises (it starts the compose file's own commands)."""

from __future__ import annotations

from tests.support.deploy import DEPLOY, command_for, compose, env_file, service

VAR = "/var/lib/attune"


def attune_services() -> list[str]:
    return [name for name, spec in compose()["services"].items() if "build" in spec]


def test_no_two_attune_services_share_a_folder():
    mounts = {}
    for name in attune_services():
        volumes = [v for v in service(name).get("volumes", []) if v.endswith(f":{VAR}")]
        if name == "migrate":
            assert not volumes  # a one-shot command with nothing to keep
            continue
        assert len(volumes) == 1, name
        mounts[name] = volumes[0].split(":")[0]
    assert len(set(mounts.values())) == len(mounts), mounts  # each its own var dir
    assert {"web", "serving-1", "serving-2", "worker-gpu-1", "worker-gpu-2"} <= set(mounts)


def test_every_service_restarts_and_the_nodes_wait_for_the_base_model():
    for name in attune_services():
        assert service(name)["restart"] == ("no" if name in {"migrate", "base-model"} else
                                            "unless-stopped"), name  # fmt: skip
    for name in ("serving-1", "serving-2", "worker-gpu-1", "worker-gpu-2"):
        assert service(name)["depends_on"]["base-model"] == {
            "condition": "service_completed_successfully"
        }


def test_the_settings_name_one_artifact_store_and_every_replica():
    env = env_file()
    assert env["ATTUNE_ARTIFACT_STORE"].startswith("s3://")
    assert env["ATTUNE_S3_ENDPOINT_URL"] == "http://minio:9000" and "minio" in compose()["services"]
    replicas = [name for name in compose()["services"] if name.startswith("serving-")]
    assert env["ATTUNE_SERVING_URLS"].split(",") == [f"http://{r}:8300" for r in replicas]
    assert "*" not in env["DJANGO_ALLOWED_HOSTS"] and env["DJANGO_SECRET_KEY"]


def test_the_commands_are_the_ones_the_multinode_test_runs():
    assert command_for("worker-gpu-1")[1:6] == ["-A", "attune", "worker", "-Q", "gpu"]
    assert command_for("serving-1")[1:3] == ["-m", "workers.serving"]
    assert command_for("base-model")[1:] == ["-m", "workers.modeling.style_lm"]


def test_the_image_collects_static_files_for_the_web_ui():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "collectstatic --noinput" in dockerfile

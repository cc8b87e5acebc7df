"""deploy/: the compose file runs Attune as on several machines, with the settings that
tests/platform/test_multinode.py exercises (it starts the compose file's own commands), in
production mode (HTTPS only, real host names, ``check --deploy`` clean)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.deploy import DEPLOY, command_for, compose, env_file, service
from tests.support.processes import ROOT, database_url_for_tests, project_env

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


# Production mode (ATTUNE_PRODUCTION=1): each check runs Django in a process of its own, since
# the mode is read once, when the settings load.

PRODUCTION = {
    "ATTUNE_PRODUCTION": "1",
    "DJANGO_ALLOWED_HOSTS": "attune.example.com",
    "DJANGO_SECRET_KEY": "k3y-" + "x7Qp2mZ9" * 8,  # long and varied, as check --deploy wants
}


def django_process(code: str, **env: str) -> subprocess.CompletedProcess:
    from django.conf import settings

    script = f"import django; django.setup()\n{code}"
    environment = project_env(**({"DATABASE_URL": settings.DATABASE_URL, "DJANGO_DEBUG": ""} | env))
    # set for the whole session once the browser tests ran (Playwright's loop): not a deployment's
    environment.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=environment, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip


def test_the_deployment_runs_in_production_mode_with_a_real_host():
    env = env_file()
    assert env["ATTUNE_PRODUCTION"] == "1"
    hosts = env["DJANGO_ALLOWED_HOSTS"].split(",")
    assert "*" not in hosts and any("." in h and not h[0].isdigit() for h in hosts), hosts


def test_check_deploy_is_clean_in_production_mode():
    code = (
        "from django.core.management import call_command\n"
        "call_command('check', deploy=True, fail_level='WARNING')\n"
        "print('clean')"
    )
    found = django_process(code, **PRODUCTION)
    assert found.returncode == 0 and "clean" in found.stdout, found.stderr[-3000:]


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"DJANGO_ALLOWED_HOSTS": "*"}, "DJANGO_ALLOWED_HOSTS"),
        ({"DJANGO_ALLOWED_HOSTS": "attune.example.com,*"}, "not '*'"),
        ({"DJANGO_ALLOWED_HOSTS": ""}, "DJANGO_ALLOWED_HOSTS"),
        ({"DJANGO_DEBUG": "1"}, "DJANGO_DEBUG"),
    ],
)
def test_production_mode_refuses_to_start_without_real_hosts_or_with_debug(changes, says):
    found = django_process("print('started')", **(PRODUCTION | changes))
    assert found.returncode != 0 and "started" not in found.stdout
    last = found.stderr.strip().splitlines()[-1]
    assert last.startswith("django.core.exceptions.ImproperlyConfigured") and says in last, last


@pytest.mark.django_db
def test_production_answers_https_only_with_hsts_csp_and_secure_cookies():
    code = """
import json
from django.test import Client
web = Client(HTTP_HOST="attune.example.com")
plain = web.get("/login")
health = web.get("/healthz")
secure = web.get("/login", secure=True)
print(json.dumps({
    "plain": [plain.status_code, plain.get("Location")],
    "health": health.status_code,
    "hsts": secure.get("Strict-Transport-Security"),
    "csp": secure.get("Content-Security-Policy"),
    "csrf_cookie_secure": bool(secure.cookies["csrftoken"]["secure"]),
}))
"""
    found = django_process(code, **PRODUCTION, DATABASE_URL=database_url_for_tests())
    assert found.returncode == 0, found.stderr[-3000:]
    answer = json.loads(found.stdout.strip().splitlines()[-1])
    assert answer["plain"] == [301, "https://attune.example.com/login"]
    assert answer["health"] in (200, 503)  # probes over plain http are not redirected
    assert answer["hsts"] == "max-age=31536000; includeSubDomains; preload"
    assert "script-src 'self'" in answer["csp"] and "upgrade-insecure-requests" in answer["csp"]
    assert answer["csrf_cookie_secure"] is True


@pytest.mark.django_db
def test_local_mode_stays_plain_http(client, settings):
    assert not settings.ATTUNE_PRODUCTION and not settings.SECURE_SSL_REDIRECT
    assert not settings.SESSION_COOKIE_SECURE and not settings.SECURE_HSTS_SECONDS
    response = client.get("/login")
    assert response.status_code == 200 and "Strict-Transport-Security" not in response
    assert "upgrade-insecure-requests" not in response["Content-Security-Policy"]

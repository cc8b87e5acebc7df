"""Start-up behaviour: torch-free web side, stdlib `platform` intact, one-line config errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.processes import ROOT, imports_torch, project_env

PLAIN_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"  # this machine's, no pgvector


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=project_env(**env),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_web_side_starts_without_torch():
    code = (
        "from django.core.management import call_command; call_command('check');"
        "from attune.wsgi import application; from django.urls import resolve; resolve('/healthz')"
    )
    assert not imports_torch("attune.urls", code=code)


def test_stdlib_platform_is_not_hidden():
    result = run_python("import platform; print(platform.system())")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Linux"


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "attune.cli", *args], cwd=ROOT, env=project_env(**env),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def assert_one_clear_line(result: subprocess.CompletedProcess, *phrases: str) -> None:
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


def test_wrong_database_url_is_one_clear_line():
    result = run_cli("run", DATABASE_URL="postgresql://nobody:secret@127.0.0.1:1/nothing")
    assert_one_clear_line(result, "cannot reach the database", "DATABASE_URL")
    assert "secret" not in result.stderr  # the password is never printed


def test_postgres_without_pgvector_is_one_clear_line():
    import psycopg

    try:
        psycopg.connect(PLAIN_POSTGRES_URL, connect_timeout=3).close()
    except psycopg.OperationalError as err:
        pytest.fail(
            f"this test needs the machine's plain PostgreSQL at {PLAIN_POSTGRES_URL}: {err}"
        )
    result = run_cli("run", DATABASE_URL=PLAIN_POSTGRES_URL)
    assert_one_clear_line(result, "no pgvector extension")


def test_unreachable_broker_is_one_clear_line(db):
    from tests.support.processes import database_url_for_tests

    result = run_cli(
        "run", DATABASE_URL=database_url_for_tests(), CELERY_BROKER_URL="redis://127.0.0.1:1/0"
    )
    assert_one_clear_line(result, "cannot reach the Celery broker", "CELERY_BROKER_URL")

"""Shared fixtures. The database is real PostgreSQL + pgvector (embedded unless DATABASE_URL)."""

from __future__ import annotations

import pytest
from celery._state import _set_task_join_will_block
from rest_framework.test import APIClient

from attune.celery import app as celery_app
from tests.support.factories import UserFactory


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def other_user(db):
    return UserFactory()


@pytest.fixture
def staff_user(db):
    return UserFactory(is_staff=True)


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def client_for(db):
    """An API client authenticated with a fresh personal token of the given user."""
    from apps.accounts.services import issue_personal_token

    def make(user) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_personal_token(user, 'test').key}")
        return client

    return make


@pytest.fixture
def eager_celery():
    """Celery tasks run in-process when sent (retries included), errors stored on the result."""
    before = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = True, False
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = before
    # Celery's eager apply_async sets a process-wide "joining would block" flag and puts back the
    # value it found; tasks sent from several threads at once (a live server) can leave it set,
    # and every later ``result.get()`` of this process then raises "Never call result.get()
    # within a task!".
    _set_task_join_will_block(False)


@pytest.fixture
def eager_celery_raising(eager_celery):
    """As ``eager_celery``, and a task's error is raised where it was sent."""
    celery_app.conf.task_eager_propagates = True

"""Tasks run through a real worker process, with Redis and with the default (database) broker."""

from __future__ import annotations

import pytest
from celery import Celery
from sqlalchemy.pool import NullPool

from tests.support.processes import (
    REDIS_URL,
    celery_worker,
    database_url_for_tests,
    wait_for_other_sessions_to_close,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def default_broker_url() -> str:
    return "sqla+" + database_url_for_tests().replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(params=["redis", "database"])
def broker_url(request) -> str:
    return REDIS_URL if request.param == "redis" else default_broker_url()


@pytest.fixture
def sender(broker_url):
    """A client app that sends tasks; closed afterwards so the test database can be dropped."""
    app = Celery("test-sender", broker=broker_url, backend="django-db")
    if broker_url.startswith("sqla+"):
        # kombu keeps its SQLAlchemy session open; NullPool closes the connection after each use.
        app.conf.broker_transport_options = {"poolclass": NullPool}
    # Earlier tests' processes (serving processes recording interactions) queue real tasks on the
    # database broker, whose tables outlive each test: start from empty queues.
    with app.connection_for_write() as connection:
        for queue in ("default", "gpu"):
            connection.default_channel.queue_purge(queue)
    yield app
    app.close()
    wait_for_other_sessions_to_close()


def test_task_round_trip_through_a_real_worker(broker_url, sender):
    with celery_worker(broker_url if broker_url == REDIS_URL else None):
        on_default = sender.send_task("health.echo", args=["hello"], queue="default")
        on_gpu = sender.send_task("health.echo", args=["on gpu"], queue="gpu")
        assert on_default.get(timeout=60)["value"] == "hello"
        assert on_gpu.get(timeout=60)["value"] == "on gpu"


def test_a_task_whose_worker_process_dies_is_requeued_and_completes(broker_url, sender, tmp_path):
    marker = tmp_path / "crashed"
    with celery_worker(
        broker_url if broker_url == REDIS_URL else None, include="tests.support.celery_tasks"
    ):
        result = sender.send_task("tests.crash_once", args=[str(marker)], queue="gpu")
        assert result.get(timeout=90) == "done after redelivery"
    assert marker.read_text() == "crashed once"

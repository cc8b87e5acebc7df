"""Promote and roll back racing for one user (two tabs, an app and the console): they queue on
the user's adapter versions in one lock order, so none deadlocks (a 500 before) and the user
ends with at most one active adapter."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from apps.adapters import services
from apps.adapters.models import AdapterVersion
from core.errors import Conflict
from tests.apps.adapters.test_api import make_version
from tests.support.factories import UserFactory


@pytest.mark.django_db(transaction=True)
def test_concurrent_promotes_and_roll_backs_never_deadlock() -> None:
    user = UserFactory()
    versions = [make_version(user, n, activated_at=None) for n in (1, 2, 3)]
    services.promote(versions[0])
    services.promote(versions[1])
    failures: list[BaseException] = []
    start = threading.Barrier(6)

    def act(i: int) -> None:
        try:
            start.wait()
            for round_ in range(6):
                if (i + round_) % 2:
                    services.promote(versions[(i + round_) % 3])
                else:
                    services.roll_back(user)
        except Conflict:
            pass  # nothing active to roll back: a clear 409, not a failure
        except BaseException as err:  # a deadlock is what this test looks for
            failures.append(err)
        finally:
            connection.close()

    threads = [threading.Thread(target=act, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert AdapterVersion.objects.filter(user=user, status="active").count() <= 1

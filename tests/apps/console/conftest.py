from __future__ import annotations

import pytest


@pytest.fixture
def user(db):
    from tests.support.factories import UserFactory

    person = UserFactory()
    person.save()  # the factory sets the password on the instance only
    return person


@pytest.fixture
def staff(client, db):
    from tests.support.factories import UserFactory

    operator = UserFactory(is_staff=True)
    operator.save()
    client.force_login(operator)
    return client

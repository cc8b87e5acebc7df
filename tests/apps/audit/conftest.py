from __future__ import annotations

import pytest


@pytest.fixture
def operator(db):
    from tests.support.factories import UserFactory

    person = UserFactory(is_staff=True, username="op-ada")
    person.save()
    return person


@pytest.fixture
def staff(client, operator):
    client.force_login(operator)
    return client


@pytest.fixture
def user(db):
    from tests.support.factories import UserFactory

    person = UserFactory()
    person.save()  # the factory sets the password on the instance only (force_login needs it)
    return person

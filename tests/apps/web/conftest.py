from __future__ import annotations

import pytest

PASSWORD = "correct horse battery"  # what UserFactory sets


@pytest.fixture
def user(db):
    """A user whose password is stored (the factory sets it on the instance only)."""
    from tests.support.factories import UserFactory

    person = UserFactory()
    person.save()
    return person


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client

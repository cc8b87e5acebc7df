"""What the console shows at size: users paged from the counters (busiest first, searched), the
newest memory entries of a long history, a sampled embedding map that always shows the user, and
the overall edit-cost series served from the cache and refreshed in the background."""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache

from apps.collab.models import CollabModelVersion, UserEmbedding
from apps.console import collab, selectors
from apps.memory.models import MemoryEntry
from tests.support.factories import EditFactory, InteractionFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_users_are_paged_busiest_first_and_searched(staff):
    people = [UserFactory(username=f"pager-{n}") for n in range(5)]
    for n, person in enumerate(people):
        for _ in range(n):
            InteractionFactory(user=person)
    ids = [u.pk for u in selectors.users_page("pager-", 1, per_page=2).object_list]
    assert ids == [people[4].pk, people[3].pk]
    page = selectors.users_page("pager-", 3, per_page=2)
    assert [u.pk for u in page.object_list] == [people[0].pk]
    assert page.paginator.count == 5 and page.object_list[0].n_interactions == 0
    found = staff.get("/console/", {"q": "PAGER-3"}).context["page"].object_list
    assert [(u.pk, u.n_interactions) for u in found] == [(people[3].pk, 3)]
    by_mail = selectors.users_page(people[2].email.upper()).object_list
    assert [u.pk for u in by_mail] == [people[2].pk]


def test_a_long_memory_shows_the_newest_entries_and_says_so(staff, user):
    for n in range(55):
        MemoryEntry.objects.create(
            user=user, context_text="c", preference=f"pref {n}", origin="user"
        )
    page = staff.get(f"/console/users/{user.pk}")
    assert len(page.context["entries"]) == 50 and page.context["entries"][0].preference == "pref 54"
    html = page.content.decode()
    assert 'id="memory-shown"' in html and "The newest 50 of 55 entries" in html
    assert "not embedded yet" in html  # these entries have no embedding


def test_the_embedding_map_is_a_sample_that_always_shows_the_user(staff, monkeypatch):
    monkeypatch.setattr(collab, "MAX_MAP_POINTS", 4)
    version = CollabModelVersion.objects.create(version=1, status="active", progress=1.0)
    dims = UserEmbedding._meta.get_field("vector").dimensions
    people = [UserFactory() for _ in range(12)]
    for n, person in enumerate(people):
        vector = [0.0] * dims
        vector[n % 3], vector[3 + n % 4] = 1.0, 0.5 * n
        UserEmbedding.objects.create(user=person, version=version, expert=n % 2, vector=vector)
    full = {p.user_id: p for p in collab.selectors.embedding_map(version)}
    found = collab.embedding_map(highlight=people[5])
    assert found.total == 12 and len(found.points) <= 5
    mine = [p for p in found.points if p.user_id == people[5].pk]
    assert len(mine) == 1 and (mine[0].x, mine[0].y) == (full[people[5].pk].x, full[people[5].pk].y)
    html = staff.get(f"/console/users/{people[5].pk}").content.decode()
    assert "of 12 users shown" in html and html.count("<circle") == len(found.points)


def test_the_overall_series_is_served_from_the_cache_and_refreshed_in_the_background(
    user, eager_celery
):
    EditFactory(interaction=InteractionFactory(user=user), distance=4)
    assert [(r.round, r.cost) for r in selectors.mean_cost_per_round()] == [(1, 4.0)]
    EditFactory(interaction=InteractionFactory(user=user), distance=2)
    assert len(selectors.mean_cost_per_round()) == 1  # fresh enough: the cached series
    key = f"console:mean-cost-per-round:{selectors.MAX_ROUNDS}"
    computed_at, rounds = cache.get(key)
    cache.set(key, (computed_at - selectors.OVERALL_TTL - 1, rounds))
    assert len(selectors.mean_cost_per_round()) == 1  # stale: served, and a refresh is sent
    assert len(selectors.mean_cost_per_round()) == 2  # … which the (eager) task did
    cache.set(key, (time.time() - selectors.STALE_AFTER - 1, []))
    assert len(selectors.mean_cost_per_round()) == 2  # too old to serve: computed at once

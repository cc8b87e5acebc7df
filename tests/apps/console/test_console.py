"""The admin console: staff only, users with counts, one user's data, adapters, jobs, plots."""

from __future__ import annotations

import pytest

from apps.adapters.models import AdapterVersion, FitJob
from apps.console import plots, selectors
from apps.memory.models import MemoryEntry
from tests.support.factories import EditFactory, InteractionFactory, RatingFactory, UserFactory

pytestmark = pytest.mark.django_db


def make_version(user, version: int, status: str = "candidate") -> AdapterVersion:
    return AdapterVersion.objects.create(
        user=user, version=version, status=status, method="dpo", base_model="m",
        base_fingerprint="f", rank=8, storage_path=f"users/{user.pk}/v{version}",
        evaluation={"metric": "preference_accuracy", "candidate": 0.8125, "base": 0.5,
                    "active": None, "promoted": True},
    )  # fmt: skip


def edit_with_cost(user, words_changed: int):
    interaction = InteractionFactory(user=user, output="one two three four five six")
    edited = " ".join(
        ["x"] * words_changed + ["one", "two", "three", "four", "five", "six"][words_changed:]
    )
    return EditFactory(interaction=interaction, edited=edited)


def test_anonymous_is_asked_to_log_in_and_users_get_403(client, user):
    assert client.get("/console/")["Location"] == "/login?next=/console/"
    client.force_login(user)
    for url in ["/console/", f"/console/users/{user.pk}", "/console/jobs", "/console/plots"]:
        response = client.get(url)
        assert response.status_code == 403, url
        assert b"Staff only" in response.content
    assert client.post(f"/console/users/{user.pk}/fit").status_code == 403
    assert client.get("/console/jobs.json", HTTP_ACCEPT="application/json").status_code == 403


def test_users_with_counts(staff, user):
    interaction = InteractionFactory(user=user)
    RatingFactory(interaction=interaction)
    EditFactory(interaction=interaction)
    EditFactory(interaction=InteractionFactory(user=user))
    page = staff.get("/console/")
    row = next(u for u in page.context["page"].object_list if u.pk == user.pk)
    assert (row.n_interactions, row.n_ratings, row.n_edits, row.n_memory) == (2, 1, 2, 0)
    assert user.username.encode() in page.content
    found = staff.get("/console/", {"q": user.username}).context["page"].object_list
    assert [u.pk for u in found] == [user.pk]
    assert staff.get("/console/", {"q": "\x00", "page": "x"}).status_code == 200


def test_one_user_shows_memory_edits_diffs_and_adapters(staff, user):
    edit = EditFactory(interaction=InteractionFactory(user=user))
    MemoryEntry.objects.create(
        user=user, context_text="news", preference="playful, short sentences",
        origin="inferred", edit=edit,
    )  # fmt: skip
    make_version(user, 1, "active")
    page = staff.get(f"/console/users/{user.pk}")
    html = page.content.decode()
    assert "playful, short sentences" in html
    assert "<ins>" in html and "<del>" in html  # the edit's word diff
    assert "candidate <strong>0.812</strong>" in html or "candidate <strong>0.813</strong>" in html
    assert 'id="user-cost-plot"' in html and "<svg" in html
    assert staff.get(f"/console/users/{2**63 - 1}").status_code == 404


def test_no_plot_without_edits(staff, user):
    InteractionFactory(user=user)
    html = staff.get(f"/console/users/{user.pk}").content.decode()
    assert 'id="no-cost-plot"' in html and 'id="user-cost-plot"' not in html
    overall = staff.get("/console/plots").content.decode()
    assert 'id="no-plot"' in overall and "<svg" not in overall


def test_promote_roll_back_and_start_a_fit(staff, user):
    first, second = make_version(user, 1, "active"), make_version(user, 2)
    response = staff.post(f"/console/users/{user.pk}/adapters/{second.pk}/promote")
    assert response.status_code == 302
    first.refresh_from_db(), second.refresh_from_db()
    assert (first.status, second.status) == ("retired", "active")
    other = make_version(UserFactory(), 1)
    assert staff.post(f"/console/users/{user.pk}/adapters/{other.pk}/promote").status_code == 404
    staff.post(f"/console/users/{user.pk}/adapters/roll-back")
    second.refresh_from_db()
    assert second.status == "retired"
    page = staff.post(f"/console/users/{user.pk}/fit", follow=True)
    assert b"A fit needs at least 8 preference pairs" in page.content
    assert not FitJob.objects.exists()
    staff.post(f"/console/users/{user.pk}/adapters/roll-back")  # nothing active: a message
    page = staff.post(f"/console/users/{user.pk}/adapters/roll-back", follow=True)
    assert b"no active adapter" in page.content


def test_jobs_page_and_live_progress(staff, user):
    job = FitJob.objects.create(user=user, status="running", progress=0.25, loss=0.61)
    page = staff.get("/console/jobs")
    assert f'data-job-id="{job.pk}" data-open="true"'.encode() in page.content
    job.progress, job.status = 0.75, "running"
    job.save()
    state = staff.get(f"/console/jobs.json?ids={job.pk},abc,{2**70}").json()["jobs"]
    assert state == [
        {"id": job.pk, "status": "running", "progress": 0.75, "loss": 0.61, "attempts": 0,
         "error": "", "is_open": True, "finished_at": None}
    ]  # fmt: skip


def test_edit_cost_per_round(staff, user, other_user):
    for cost in (4, 2, 0):
        edit_with_cost(user, cost)
    for cost in (6, 2):
        edit_with_cost(other_user, cost)
    rounds = selectors.mean_cost_per_round()
    assert [(r.round, r.cost, r.users) for r in rounds] == [(1, 5.0, 2), (2, 2.0, 2), (3, 0.0, 1)]
    mine = selectors.cost_per_round([user.pk])[user.pk]
    assert [r.cost for r in mine] == [4.0, 2.0, 0.0]
    html = staff.get("/console/plots").content.decode()
    assert "<svg" in html and "mean over users" in html and user.username in html


def test_line_chart_is_not_drawn_without_points():
    assert plots.line_chart([plots.Series("a", [])], title="t", x_label="x", y_label="y") is None
    assert plots.scatter_chart([], title="t") is None
    svg = plots.line_chart([plots.Series("<a>", [(1, 2.0)])], title="t", x_label="x", y_label="y")
    assert "<circle" in svg and "&lt;a&gt;" in svg and "<a>" not in svg


def test_similar_users_and_the_embedding_map_from_copl(staff, user):
    from apps.collab.models import CollabModelVersion, UserEmbedding

    html = staff.get(f"/console/users/{user.pk}").content.decode()
    assert "No CoPL model trained yet" in html and "No user embeddings to map yet" in html
    version = CollabModelVersion.objects.create(version=1, status="active", progress=1.0)
    near, far = UserFactory(username="near"), UserFactory(username="far")
    dims = UserEmbedding._meta.get_field("vector").dimensions
    for person, head, expert in ((user, [1.0, 0.0], 0), (near, [0.9, 0.1], 0), (far, [0, 1], 1)):
        UserEmbedding.objects.create(
            user=person, version=version, expert=expert, vector=[*head, *[0.0] * (dims - 2)]
        )
    page = staff.get(f"/console/users/{user.pk}")
    assert [s.username for s in page.context["similar"]] == ["near", "far"]
    html = page.content.decode()
    assert "embedding trained" in html and 'id="similar-users"' in html
    assert html.count("<circle") == 3 and "near (expert 0)" in html
    running = CollabModelVersion.objects.create(version=2, status="running", progress=0.4)
    jobs = staff.get("/console/jobs").content.decode()
    assert f'data-job-id="copl-{running.pk}" data-open="true"' in jobs
    state = staff.get(f"/console/jobs.json?ids=copl-{running.pk}").json()["jobs"]
    assert state[0]["id"] == f"copl-{running.pk}" and state[0]["progress"] == 0.4

"""Staff actions on a user's data are recorded (who, what, whose, when, which object) and listed
in the console, newest first, filtered by staff member and by user; only staff see the log."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType

from apps.adapters.models import AdapterVersion, FitJob
from apps.audit import services
from apps.audit.admin import AuditEntryAdmin
from apps.audit.models import AuditEntry
from tests.support.factories import EditFactory, InteractionFactory, UserFactory

pytestmark = pytest.mark.django_db
Action = AuditEntry.Action


def version(user, number: int, status: str = "candidate") -> AdapterVersion:
    return AdapterVersion.objects.create(
        user=user, version=number, status=status, method="dpo", base_model="m",
        base_fingerprint="f", rank=8, storage_path=f"users/{user.pk}/v{number}",
    )  # fmt: skip


def rows() -> list[tuple[str, str, str, str, str]]:
    return [
        (e.actor_username, e.action, e.target_username, e.object_type, e.object_id)
        for e in AuditEntry.objects.order_by("id")
    ]


def test_each_console_action_on_a_users_data_is_recorded(staff, operator, user):
    version(user, 1, "active")
    second = version(user, 2)
    staff.post(f"/console/users/{user.pk}/adapters/{second.pk}/promote")
    staff.post(f"/console/users/{user.pk}/adapters/roll-back")
    for n in range(8):  # eight edits: enough preference pairs for a fit
        EditFactory(interaction=InteractionFactory(user=user, output=f"plain text number {n}"))
    staff.post(f"/console/users/{user.pk}/fit")
    job = FitJob.objects.get(user=user)
    name = user.username
    assert rows() == [
        ("op-ada", Action.PROMOTE_ADAPTER, name, "adapterversion", str(second.pk)),
        ("op-ada", Action.ROLL_BACK_ADAPTER, name, "", ""),  # back to the base model
        ("op-ada", Action.START_FIT, name, "fitjob", str(job.pk)),
    ]
    entry = AuditEntry.objects.get(action=Action.PROMOTE_ADAPTER)
    assert (entry.actor, entry.target_user, entry.details) == (operator, user, {"version": 2})
    assert entry.created_at is not None and "promoted" in entry.summary


def test_refused_actions_change_nothing_and_record_nothing(staff, user):
    staff.post(f"/console/users/{user.pk}/adapters/roll-back")  # nothing active
    staff.post(f"/console/users/{user.pk}/fit")  # too few pairs
    FitJob.objects.create(user=user, status="running")
    for n in range(8):
        EditFactory(interaction=InteractionFactory(user=user, output=f"plain text number {n}"))
    staff.post(f"/console/users/{user.pk}/fit")  # one is already running: no second job
    assert FitJob.objects.filter(user=user).count() == 1
    assert not AuditEntry.objects.exists()


def test_the_log_page_newest_first_filtered_and_paginated(staff, operator, user):
    other_staff = UserFactory(is_staff=True, username="op-bob")
    someone = UserFactory(username="someone")
    for n in range(52):
        services.record(operator, Action.START_FIT, user, summary=f"fit {n} for {user.username}")
    services.record(other_staff, Action.PROMOTE_ADAPTER, someone, summary="bob promoted v1")

    page = staff.get("/console/audit")
    shown = list(page.context["page"].object_list)
    name = user.username
    assert [shown[0].summary, shown[1].summary] == ["bob promoted v1", f"fit 51 for {name}"]
    assert len(shown) == 50 and page.context["page"].paginator.count == 53
    assert b"bob promoted v1" in page.content and b'id="audit-table"' in page.content
    older = staff.get("/console/audit", {"page": 2}).context["page"].object_list
    assert [e.summary for e in older] == [f"fit {n} for {name}" for n in (2, 1, 0)]

    by_bob = staff.get("/console/audit", {"actor": "op-bob"}).context["page"].object_list
    assert [e.summary for e in by_bob] == ["bob promoted v1"]
    on_someone = staff.get("/console/audit", {"user": str(someone.pk)}).context["page"]
    assert [e.summary for e in on_someone.object_list] == ["bob promoted v1"]
    both = staff.get("/console/audit", {"actor": "op-ada", "user": "someone"}).context["page"]
    assert both.paginator.count == 0
    unknown = staff.get("/console/audit", {"actor": "nobody-at-all"})
    assert unknown.context["page"].paginator.count == 0 and b'id="audit-unknown"' in unknown.content
    assert staff.get("/console/audit", {"user": "\x00", "page": "x"}).status_code == 200


def test_admin_changes_are_shown_beside_it(staff, operator, user):
    LogEntry.objects.create(
        user=operator, content_type=ContentType.objects.get_for_model(user),
        object_id=str(user.pk), object_repr=user.username, action_flag=CHANGE,
        change_message="Changed is_active.",
    )  # fmt: skip
    html = staff.get("/console/audit", {"user": user.username}).content.decode()
    assert 'id="admin-log-table"' in html and "Changed is_active." in html
    html = staff.get("/console/audit", {"user": "op-ada"}).content.decode()
    assert "Changed is_active." not in html  # that change was on another account


def test_only_staff_see_the_log(client, user):
    assert client.get("/console/audit")["Location"] == "/login?next=/console/audit"
    client.force_login(user)
    response = client.get("/console/audit")
    assert response.status_code == 403 and b"Staff only" in response.content


def test_rows_outlive_the_accounts_and_cannot_be_edited_in_the_admin(operator, user, rf):
    services.record(operator, Action.START_FIT, user, summary="kept")
    user.delete()
    entry = AuditEntry.objects.get()
    assert (entry.target_user, entry.target_username) == (None, entry.target_username)
    assert entry.target_username and entry.summary == "kept"
    request = rf.get("/admin/")
    request.user = UserFactory(is_staff=True, is_superuser=True)
    admin = AuditEntryAdmin(AuditEntry, None)
    assert not admin.has_add_permission(request)
    assert not admin.has_change_permission(request, entry)
    assert not admin.has_delete_permission(request, entry)


def test_staff_exports_of_other_users_data_are_recorded(staff, operator, user):
    from apps.audit.models import AuditEntry

    assert staff.get("/api/my-data").status_code == 200  # their own: nothing to record
    assert staff.get("/api/export/dpo").status_code == 200
    assert staff.get(f"/api/export/kto?user_id={operator.pk}").status_code == 200
    assert not AuditEntry.objects.exists()

    assert staff.get(f"/api/my-data?user_id={user.pk}").status_code == 200
    assert staff.get(f"/api/export/dpo?user_id={user.pk}").status_code == 200
    assert staff.get("/api/export/kto?all=1").status_code == 200
    rows = list(AuditEntry.objects.order_by("id").values_list("action", "target_username"))
    assert rows == [
        (AuditEntry.Action.EXPORT_USER_DATA, user.username),
        (AuditEntry.Action.EXPORT_FEEDBACK, user.username),
        (AuditEntry.Action.EXPORT_FEEDBACK, "(every user)"),
    ]

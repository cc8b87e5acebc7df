"""The admin console (staff only): users, one user's data and adapters, jobs, edit-cost plots."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.models import User
from apps.adapters import services as adapters
from apps.adapters.models import AdapterVersion, FitJob
from apps.audit import selectors as audit_log
from apps.audit import services as audit
from apps.audit.models import AuditEntry
from apps.console import collab, plots, selectors
from apps.console.permissions import staff_required
from apps.personas.selectors import persona_of
from core.errors import Conflict, NotEnoughData

MAX_SEARCH = 100
MEMORY_SHOWN = 50  # the newest; all of them are in the user's data export


@staff_required
@require_GET
def users(request: HttpRequest) -> HttpResponse:
    search = request.GET.get("q", "").strip()[:MAX_SEARCH].replace("\x00", "")
    page = selectors.users_page(search, request.GET.get("page"))
    return render(request, "console/users.html", {"page": page, "q": search})


def _user(pk: int):
    found = selectors.user(pk)
    if found is None:
        raise Http404("No such user.")
    return found


def _user_cost_plot(user_id: int) -> object:
    rounds = selectors.cost_per_round([user_id]).get(user_id, [])
    running, total = [], 0.0
    for index, r in enumerate(rounds, start=1):
        total += r.cost
        running.append((r.round, total / index))
    return plots.line_chart(
        [
            plots.Series("edit cost", [(r.round, r.cost) for r in rounds], dots=True),
            plots.Series("running mean", running, color="#111827", width=2.5),
        ],
        title="Edit cost per round",
        x_label="round (edited interaction, in order)",
        y_label="words changed",
    )


def _embedding_plot(person: User) -> object:
    found = collab.embedding_map(highlight=person)
    shown = f"; {len(found.points):,} of {found.total:,} users shown"
    shown = shown if found.total > len(found.points) else ""
    return plots.scatter_chart(
        [
            plots.Point(
                p.x, p.y, f"{p.username} (expert {p.expert})", p.user_id == person.pk, p.expert
            )
            for p in found.points
        ],
        title=f"User embeddings (CoPL, 2 principal components; colour: expert{shown})",
    )


@staff_required
@require_GET
def user_detail(request: HttpRequest, pk: int) -> HttpResponse:
    person = _user(pk)
    context = {
        "person": person,
        "persona": persona_of(person),
        "entries": selectors.memory_entries(person, limit=MEMORY_SHOWN),
        "interactions": selectors.interactions_with_edits(person),
        "versions": selectors.adapter_versions(person),
        "jobs": selectors.fit_jobs(person, limit=10),
        "cost_plot": _user_cost_plot(person.pk),
        "similar": collab.similar_users(person),
        "embedding": collab.embedding(person),
        "embedding_plot": _embedding_plot(person),
    }
    return render(request, "console/user.html", context)


def _back_to(pk: int, section: str) -> HttpResponse:
    return redirect(reverse("console:user", kwargs={"pk": pk}) + f"#{section}")


# Staff may change another user's adapters here (operators need to); each change is recorded in
# the audit log in the same transaction. A refused action (nothing to roll back, too few pairs, a
# fit already open) changes nothing and records nothing.


@staff_required
@require_POST
def promote(request: HttpRequest, pk: int, version: int) -> HttpResponse:
    person = _user(pk)
    found = AdapterVersion.objects.filter(user=person, pk=version).first()
    if found is None:
        raise Http404("No such adapter version of this user.")
    with transaction.atomic():
        promoted = adapters.promote(found)
        audit.record(
            request.user, AuditEntry.Action.PROMOTE_ADAPTER, person, obj=promoted,
            summary=f"promoted {promoted.label} of {person.username}", version=promoted.version,
        )  # fmt: skip
    messages.success(request, f"{promoted.label} is now the active adapter.")
    return _back_to(pk, "adapters")


@staff_required
@require_POST
def roll_back(request: HttpRequest, pk: int) -> HttpResponse:
    person = _user(pk)
    try:
        with transaction.atomic():
            previous = adapters.roll_back(person)
            label = previous.label if previous else "the base model"
            audit.record(
                request.user, AuditEntry.Action.ROLL_BACK_ADAPTER, person, obj=previous,
                summary=f"rolled back {person.username} to {label}",
                now_active=previous.version if previous else None,
            )  # fmt: skip
    except Conflict as err:
        messages.error(request, str(err))
    else:
        messages.success(request, f"Rolled back: {person.username} now uses {label}.")
    return _back_to(pk, "adapters")


@staff_required
@require_POST
def start_fit(request: HttpRequest, pk: int) -> HttpResponse:
    person = _user(pk)
    try:
        with transaction.atomic():
            job, created = adapters.request_fit(person)
            if created:
                audit.record(
                    request.user, AuditEntry.Action.START_FIT, person, obj=job,
                    summary=f"started fit job {job.pk} for {person.username}",
                )  # fmt: skip
    except NotEnoughData as err:
        messages.error(request, str(err))
        return _back_to(pk, "adapters")
    if created:
        messages.success(request, f"Fit job {job.pk} queued on the gpu queue.")
    else:
        messages.info(request, f"Fit job {job.pk} is already {job.status}.")
    return _back_to(pk, "jobs")


@staff_required
@require_GET
def audit_page(request: HttpRequest) -> HttpResponse:
    """The audit log, newest first, 50 a page; ``?actor=`` and ``?user=`` (id or username)
    narrow it. The Django admin's own change log is listed beside it."""
    wanted = {
        name: request.GET.get(name, "").strip()[:MAX_SEARCH].replace("\x00", "")
        for name in ("actor", "user")
    }
    found = {name: audit_log.find_user(value) for name, value in wanted.items()}
    unknown = [name for name, value in wanted.items() if value and found[name] is None]
    rows = audit_log.entries(actor=found["actor"], target=found["user"])
    admin_rows = [] if unknown else audit_log.admin_changes(found["actor"], found["user"])
    if unknown:  # a filter naming nobody matches nothing (not everything)
        rows = rows.none()
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "admin_changes": admin_rows,
        "filters": wanted,
        "unknown": unknown,
        "actors": audit_log.staff_actors(),
    }
    return render(request, "console/audit.html", context)


@staff_required
@require_GET
def jobs(request: HttpRequest) -> HttpResponse:
    context = {
        "jobs": selectors.fit_jobs(limit=100),
        "runs": collab.runs(),
    }
    return render(request, "console/jobs.html", context)


def _ids(values: list[str], prefix: str = "") -> list[int]:
    ids = [v.removeprefix(prefix) for v in values if v.startswith(prefix)]
    return [int(i) for i in ids if i.isdigit() and len(i) < 19]


@staff_required
@require_GET
def jobs_json(request: HttpRequest) -> JsonResponse:
    """The state of the jobs named by ``?ids=1,2,copl-3`` (adapter fits; ``copl-`` for CoPL
    training runs), else of the adapter fits the jobs page lists."""
    wanted = request.GET.get("ids", "").split(",")[:200]
    fits, runs = _ids([w for w in wanted if not w.startswith("copl-")]), _ids(wanted, "copl-")
    if not fits and not runs:
        return JsonResponse(
            {"jobs": [selectors.job_state(j) for j in selectors.fit_jobs(limit=100)]}
        )
    found = [selectors.job_state(job) for job in FitJob.objects.filter(pk__in=fits)]
    return JsonResponse({"jobs": found + collab.run_states(runs)})


@staff_required
@require_GET
def plots_page(request: HttpRequest) -> HttpResponse:
    overall = selectors.mean_cost_per_round()
    editors = selectors.busiest_editors()
    per_user = selectors.cost_per_round([u.pk for u in editors])
    series = [
        plots.Series(u.username, [(r.round, r.cost) for r in per_user.get(u.pk, [])], width=1)
        for u in editors
    ]
    mean = plots.Series("mean over users", [(r.round, r.cost) for r in overall], "#111827", 3)
    chart = plots.line_chart(
        [mean, *series],
        title="Edit cost per round, overall and per user",
        x_label="round (each user's n-th edited interaction)",
        y_label="words changed",
    )
    context = {"chart": chart, "overall": overall[:50], "editors": editors}
    return render(request, "console/plots.html", context)

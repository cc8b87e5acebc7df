"""The admin console (staff only): users, one user's data and adapters, jobs, edit-cost plots."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from apps.adapters import services as adapters
from apps.adapters.models import AdapterVersion, FitJob
from apps.audit import selectors as audit_log
from apps.audit import services as audit
from apps.audit.models import AuditEntry
from apps.console import collab, figures, selectors
from apps.console.permissions import staff_required
from apps.generation.selectors import arbitration_of, layer_states
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


@staff_required
@require_GET
def user_detail(request: HttpRequest, pk: int) -> HttpResponse:
    person = _user(pk)
    context = {
        "person": person,
        "persona": persona_of(person),
        "layers": layer_states(person),
        "arbitration": arbitration_of(person),
        "entries": selectors.memory_entries(person, limit=MEMORY_SHOWN),
        "interactions": selectors.interactions_with_edits(person),
        "versions": selectors.adapter_versions(person),
        "jobs": selectors.fit_jobs(person, limit=10),
        "cost_plot": figures.user_cost_plot(person),
        **figures.collab_figures(person),
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
    computed_at, overall = selectors.mean_cost_per_round_stamped()
    editors = selectors.busiest_editors()
    chart = figures.overall_chart(computed_at, overall, editors)
    context = {"chart": chart, "overall": overall[:50], "editors": editors}
    return render(request, "console/plots.html", context)

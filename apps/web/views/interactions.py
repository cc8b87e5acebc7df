"""One interaction: read it, rate it, edit it with a word-diff preview; the history; "next"."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from apps.feedback import services as feedback
from apps.feedback.models import Interaction
from apps.web import drafts, paging, selectors
from apps.web.drafts import login_required_keeping_draft
from apps.web.forms import EditForm, RateForm
from core.errors import ReferenceNotFound


def _owned(request: HttpRequest, pk: int) -> Interaction:
    found = selectors.interaction(request.user, pk)
    if found is None:
        raise Http404("You have no such interaction.")
    return found


def _learning(request: HttpRequest, interaction: Interaction) -> dict[str, Any]:
    """What was learned from the interaction's edits, and whether an inference is pending."""
    edit = selectors.latest_edit(request.user, interaction.pk)
    learned = selectors.learned_from(request.user, interaction.pk)
    pending = edit is not None and edit.distance > 0 and not learned
    waiting = selectors.waiting_to_learn(request.user, edit) if pending else None
    return {"edit": edit, "learned": learned, "pending": pending, "waiting": waiting}


def _detail(
    request: HttpRequest,
    interaction: Interaction,
    *,
    edit_form: EditForm | None = None,
    rate_form: RateForm | None = None,
    diff: list[dict[str, str]] | None = None,
    distance: int | None = None,
    status: int = 200,
) -> HttpResponse:
    learning = _learning(request, interaction)
    if edit_form is None:
        draft = drafts.pop(request, f"edit-{interaction.pk}")
        if draft and draft.get("edited"):
            edit_form = EditForm(initial={"edited": draft["edited"]})
            cost = feedback.edit_cost(interaction.output, draft["edited"])
            diff, distance = cost.diff, cost.distance
        else:
            current = learning["edit"].edited if learning["edit"] else interaction.output
            edit_form = EditForm(initial={"edited": current})
    context = {
        "interaction": interaction,
        "rating": selectors.rating_of(request.user, interaction.pk),
        "rate_form": rate_form or RateForm(),
        "edit_form": edit_form,
        "diff": diff,
        "distance": distance,
        "stars": range(1, 6),
        **learning,
    }
    return render(request, "web/interaction.html", context, status=status)


@login_required_keeping_draft
@require_GET
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail(request, _owned(request, pk))


@login_required_keeping_draft
@require_POST
def rate(request: HttpRequest, pk: int) -> HttpResponse:
    interaction = _owned(request, pk)
    form = RateForm(request.POST)
    if not form.is_valid():
        return _detail(request, interaction, rate_form=form, status=400)
    try:
        feedback.rate(request.user, interaction.pk, **form.as_kwargs())
    except ReferenceNotFound as err:
        raise Http404(err.message) from err
    messages.success(request, "Rating saved.")
    return redirect("web:interaction", pk=interaction.pk)


@login_required_keeping_draft
@require_POST
def edit(request: HttpRequest, pk: int) -> HttpResponse:
    interaction = _owned(request, pk)
    form = EditForm(request.POST)
    if not form.is_valid():
        return _detail(request, interaction, edit_form=form, status=400)
    edited = form.cleaned_data["edited"]
    if form.cleaned_data["action"] == "preview":
        cost = feedback.edit_cost(interaction.output, edited)
        return _detail(request, interaction, edit_form=form, diff=cost.diff, distance=cost.distance)
    try:
        saved = feedback.record_edit(request.user, interaction.pk, edited=edited)
    except ReferenceNotFound as err:
        raise Http404(err.message) from err
    if saved.distance:
        messages.success(
            request, f"Edit saved ({saved.distance} words changed). Attune learns from it."
        )
    else:
        messages.success(request, "Saved unchanged: Attune takes that as a good output.")
    return redirect(reverse("web:interaction", kwargs={"pk": interaction.pk}) + "#learned")


@login_required_keeping_draft
@require_POST
def diff_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """The word diff of a draft against the output, as an HTML fragment in JSON (for scripts)."""
    interaction = _owned(request, pk)
    form = EditForm({"edited": request.POST.get("edited", ""), "action": "preview"})
    if not form.is_valid():
        return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
    cost = feedback.edit_cost(interaction.output, form.cleaned_data["edited"])
    html = render_to_string("web/_diff.html", {"diff": cost.diff, "distance": cost.distance})
    return JsonResponse({"distance": cost.distance, "html": html})


@login_required_keeping_draft
@require_GET
def learned(request: HttpRequest, pk: int) -> HttpResponse:
    """What was learned from this interaction's edit (the page polls it while pending)."""
    interaction = _owned(request, pk)
    learning = _learning(request, interaction)
    html = render_to_string("web/_learned.html", learning, request=request)
    return JsonResponse({"pending": learning["pending"], "html": html})


@login_required_keeping_draft
@require_GET
def history(request: HttpRequest) -> HttpResponse:
    page = paging.page_of(selectors.interactions(request.user), paging.position_in(request), 20)
    return render(request, "web/history.html", {"page": page})


@login_required_keeping_draft
@require_GET
def next_interaction(request: HttpRequest) -> HttpResponse:
    """The next interaction still waiting for a rating or an edit; else the ask page."""
    after_id = request.GET.get("after", "")
    after = None
    if after_id.isdigit() and len(after_id) < 19:
        after = selectors.interaction(request.user, int(after_id))
    found = selectors.next_unjudged(request.user, after)
    if found is None:
        messages.info(request, "Nothing left to rate or edit. Ask for a new text.")
        return redirect("web:ask")
    return redirect("web:interaction", pk=found.pk)

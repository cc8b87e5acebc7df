"""Ask for a text (one output) or for two candidates to compare (A/B)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from apps.feedback import services as feedback
from apps.web import drafts, generation, selectors
from apps.web.drafts import login_required_keeping_draft
from apps.web.forms import AskForm, ChoiceForm
from core import config
from core.errors import ReferenceNotFound


def _ask_form(request: HttpRequest, name: str) -> AskForm:
    if request.method == "POST":
        return AskForm(request.POST)
    return AskForm(initial=drafts.pop(request, name))


def _generate(request: HttpRequest, form: AskForm, n: int) -> list[int] | None:
    """The new interactions' ids, or None with the reason added to the form."""
    if not form.is_valid():
        return None
    try:
        generated = generation.generate(request.user, form.messages(), n=n)
    except generation.GenerationFailed as err:
        form.add_error(None, str(err))
        return None
    if generated.notice:  # a text cut to the window, or a memory that fell back to one entry
        messages.info(request, generated.notice)
    return generated.ids


def _page(request: HttpRequest, template: str, form: AskForm) -> HttpResponse:
    status = 400 if form.is_bound and form.errors else 200
    context = {
        "form": form,
        "service": generation.service_state(),
        "samples": selectors.sample_contexts(),
        "builtin_model": settings.ATTUNE_SERVING_BACKEND == "local"
        and config.base_model_name() == config.STYLE_LM_NAME,
        "recent": selectors.interactions(request.user)[:5],
    }
    return render(request, template, context, status=status)


@login_required_keeping_draft
@require_http_methods(["GET", "POST"])
def ask(request: HttpRequest) -> HttpResponse:
    form = _ask_form(request, "ask")
    if request.method == "POST" and (ids := _generate(request, form, n=1)):
        return redirect("web:interaction", pk=ids[0])
    return _page(request, "web/ask.html", form)


@login_required_keeping_draft
@require_http_methods(["GET", "POST"])
def compare(request: HttpRequest) -> HttpResponse:
    form = _ask_form(request, "compare")
    if request.method == "POST" and (ids := _generate(request, form, n=2)):
        return redirect("web:compare-pair", a=ids[0], b=ids[1])
    return _page(request, "web/compare.html", form)


def _pair(request: HttpRequest, a: int, b: int) -> tuple:
    first, second = selectors.interaction(request.user, a), selectors.interaction(request.user, b)
    if first is None or second is None or a == b:
        raise Http404("No such pair of your interactions.")
    return first, second


@login_required_keeping_draft
def compare_pair(request: HttpRequest, a: int, b: int) -> HttpResponse:
    first, second = _pair(request, a, b)
    return render(request, "web/pair.html", {"a": first, "b": second, "form": ChoiceForm()})


@login_required_keeping_draft
@require_POST
def choose(request: HttpRequest, a: int, b: int) -> HttpResponse:
    first, second = _pair(request, a, b)
    form = ChoiceForm(request.POST)
    if not form.is_valid():
        context = {"a": first, "b": second, "form": form}
        return render(request, "web/pair.html", context, status=400)
    try:
        feedback.create_comparison(
            request.user,
            choice=form.cleaned_data["choice"],
            interaction_a_id=first.pk,
            interaction_b_id=second.pk,
        )
    except ReferenceNotFound as err:
        raise Http404(err.message) from err
    messages.success(request, "Thanks: your choice is recorded.")
    return redirect("web:compare")

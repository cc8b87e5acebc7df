""" "What Attune learned about me": learned preferences, persona profile, preference sliders,
and the layer switches (which personalization layers Attune may apply)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html_join
from django.views.decorators.http import require_GET, require_POST

from apps.adapters import services as adapters
from apps.generation import selectors as generation_selectors
from apps.generation import services as generation
from apps.memory import selectors as memory_selectors
from apps.memory import services as memory
from apps.memory.models import MemoryEntry
from apps.personas import services as personas
from apps.personas.selectors import persona_of
from apps.web import drafts, paging, selectors
from apps.web.drafts import login_required_keeping_draft
from apps.web.forms import (
    SOURCE_CHOICES,
    LayersForm,
    PersonaForm,
    PreferenceForm,
    SlidersForm,
    show_refusal,
)
from core.errors import InvalidValue

PAGE_SIZE = 20
"""Learned preferences per page of /me. Each has its correction form, written as plain HTML
(rendering Django's widgets for every entry cost ~20 ms an entry, most of the page's time)."""


def _persona_form(request: HttpRequest) -> PersonaForm:
    if draft := drafts.pop(request, "persona"):
        return PersonaForm(initial=draft)
    persona = persona_of(request.user)
    if persona is None:
        return PersonaForm()
    attributes = PersonaForm.attributes_text(persona.attributes)
    return PersonaForm(initial={"text": persona.text, "attributes": attributes})


def _source_options(selected: str) -> str:
    """The ``<option>``s of a correction's source, ``selected`` chosen (built here: in the
    template the loop cost more than the rest of an entry)."""
    return format_html_join(
        "",
        '<option value="{}"{}>{}</option>',
        ((value, " selected" if value == selected else "", name) for value, name in SOURCE_CHOICES),
    )


def _page(request: HttpRequest, status: int = 200, **forms: Any) -> HttpResponse:
    user = request.user
    page = paging.page_of(
        selectors.memory_entries_shown(user), paging.position_in(request), PAGE_SIZE
    )
    entries = page.rows
    edit_forms = forms.pop("edit_forms", {})
    shown = {entry.pk for entry in entries}
    for pk in edit_forms.keys() - shown:  # a refused correction stays in sight
        if (entry := selectors.memory_entry(user, pk)) is not None:
            entries.insert(0, entry)
    for entry in entries:  # a refused correction keeps its form; the others are plain HTML
        entry.form = edit_forms.get(entry.pk)
        entry.source_options = _source_options(entry.source)
    sliders = selectors.sliders(user)
    context = {
        "entries": entries,
        "page": page,
        "here": request.get_full_path()
        if request.method == "GET"
        else drafts.safe_return_to(request, reverse("web:learned")),
        "anchor": "#preferences",
        "entry_count": selectors.memory_entries(user).count(),
        "max_preference": settings.ATTUNE_MAX_PREFERENCE_CHARS,
        "waiting": memory_selectors.waiting_edits(user).count(),
        "origins": dict(MemoryEntry.Origin.choices),
        "add_form": forms.get("add_form")
        or PreferenceForm(initial=drafts.pop(request, "preference-add")),
        "persona_form": forms.get("persona_form") or _persona_form(request),
        "sliders": sliders,
        "max_eta": settings.ATTUNE_MAX_ABS_ETA,
        "sliders_form": forms.get("sliders_form")
        or SlidersForm(
            vectors=[s.vector for s in sliders], initial={s.vector.name: s.eta for s in sliders}
        ),
        "layers_form": forms.get("layers_form")
        or LayersForm(initial=generation_selectors.layer_settings(user).switches()),
        "arbitration": generation_selectors.arbitration_of(user),
    }
    return render(request, "web/learned.html", context, status=status)


def _back(section: str, request: HttpRequest | None = None) -> HttpResponse:
    """To ``section`` of /me; with ``request``, on the page of preferences its form came from."""
    page = reverse("web:learned")
    if request is not None:
        page = drafts.safe_return_to(request, page)
    return redirect(page + f"#{section}")


@login_required_keeping_draft
@require_GET
def learned(request: HttpRequest) -> HttpResponse:
    return _page(request)


@login_required_keeping_draft
@require_POST
def add_preference(request: HttpRequest) -> HttpResponse:
    form = PreferenceForm(request.POST)
    if form.is_valid():
        try:
            memory.add_preference(request.user, **form.cleaned_data)
        except InvalidValue as err:
            show_refusal(form, err)
        else:
            messages.success(request, "Preference added. It outranks learned ones nearby.")
            return _back("preferences")
    return _page(request, status=400, add_form=form)


def _entry(request: HttpRequest, pk: int) -> MemoryEntry:
    entry = selectors.memory_entry(request.user, pk)
    if entry is None:
        raise Http404("You have no such preference.")
    return entry


@login_required_keeping_draft
@require_POST
def edit_preference(request: HttpRequest, pk: int) -> HttpResponse:
    entry = _entry(request, pk)
    form = PreferenceForm(request.POST, with_context=False, prefix=f"e{pk}")
    if form.is_valid():
        try:
            memory.update_preference(entry, **form.cleaned_data)
        except InvalidValue as err:
            show_refusal(form, err)
        else:
            messages.success(request, "Preference updated: it is yours now.")
            return _back(f"entry-{pk}", request)
    return _page(request, status=400, edit_forms={pk: form})


@login_required_keeping_draft
@require_POST
def delete_preference(request: HttpRequest, pk: int) -> HttpResponse:
    memory.delete_preference(_entry(request, pk))
    messages.success(request, "Preference forgotten.")
    return _back("preferences", request)


@login_required_keeping_draft
@require_POST
def restore_preference(request: HttpRequest, pk: int) -> HttpResponse:
    """Bring back a preference a newer one replaced (superseded): it is used again."""
    try:
        memory.restore(_entry(request, pk))
    except InvalidValue as err:
        messages.error(request, err.message)
    else:
        messages.success(request, "Preference restored: Attune uses it again for similar texts.")
    return _back(f"entry-{pk}", request)


@login_required_keeping_draft
@require_POST
def persona(request: HttpRequest) -> HttpResponse:
    form = PersonaForm(request.POST)
    if not form.is_valid():
        return _page(request, status=400, persona_form=form)
    personas.set_persona(
        request.user, text=form.cleaned_data["text"], attributes=form.cleaned_data["attributes"]
    )
    messages.success(request, "Persona saved.")
    return _back("persona")


@login_required_keeping_draft
@require_POST
def sliders(request: HttpRequest) -> HttpResponse:
    vectors = [s.vector for s in selectors.sliders(request.user)]
    form = SlidersForm(request.POST, vectors=vectors)
    if not form.is_valid():
        return _page(request, status=400, sliders_form=form)
    try:
        adapters.set_etas(request.user, form.cleaned_data)
    except InvalidValue as err:
        show_refusal(form, err)
        return _page(request, status=400, sliders_form=form)
    messages.success(request, "Sliders saved: your next texts use them.")
    return _back("sliders")


@login_required_keeping_draft
@require_POST
def layers(request: HttpRequest) -> HttpResponse:
    form = LayersForm(request.POST)
    if not form.is_valid():
        return _page(request, status=400, layers_form=form)
    row = generation.set_layers(request.user, **form.cleaned_data)
    off = [name for name, on in row.switches().items() if not on]
    note = f" Off: {', '.join(off)}." if off else " Every layer is on."
    messages.success(request, "Layer switches saved: your next texts follow them." + note)
    return _back("layers")

"""My data: download everything Attune holds about me, or delete all of it (with confirmation)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from apps.privacy import services as privacy
from apps.privacy.responses import export_response
from apps.web import selectors
from apps.web.drafts import login_required_keeping_draft
from apps.web.forms import DeleteEverythingForm


def _page(request: HttpRequest, form: DeleteEverythingForm, status: int = 200) -> HttpResponse:
    user = request.user
    context = {
        "form": form,
        "counts": {
            "interactions": selectors.interactions(user).count(),
            "learned preferences": selectors.memory_entries(user).count(),
        },
    }
    return render(request, "web/my_data.html", context, status=status)


@login_required_keeping_draft
@require_GET
def my_data(request: HttpRequest) -> HttpResponse:
    return _page(request, DeleteEverythingForm())


@login_required_keeping_draft
@require_GET
def export(request: HttpRequest) -> StreamingHttpResponse:
    return export_response(request.user)


@login_required_keeping_draft
@require_POST
def delete_everything(request: HttpRequest) -> HttpResponse:
    form = DeleteEverythingForm(request.POST)
    if not form.is_valid():
        return _page(request, form, status=400)
    deleted = privacy.erase_user_data(request.user)
    total = sum(deleted.values())
    messages.success(request, f"Deleted everything: {total} rows. Your account stays.")
    return redirect("web:my-data")

"""Staff only: the console asks anonymous visitors to log in and answers 403 to everyone else."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render


def is_operator(user: Any) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_staff)


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if is_operator(request.user):
            return view(request, *args, **kwargs)
        wants_json = "application/json" in request.headers.get("Accept", "")
        if not request.user.is_authenticated:
            if wants_json:
                return JsonResponse({"detail": "Log in as staff."}, status=401)
            return redirect_to_login(request.get_full_path())
        if wants_json:
            return JsonResponse({"detail": "The console is for staff only."}, status=403)
        return render(request, "console/403.html", status=403)

    return wrapped

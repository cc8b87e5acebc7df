"""Log in and out; the home page sends a person to where they ask for a text."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from apps.accounts.lockout import LoginForm
from apps.web import drafts


class LoginView(auth_views.LoginView):
    template_name = "web/login.html"
    authentication_form = LoginForm  # says so when too many failures locked the login
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["draft_kept"] = drafts.has_any(self.request)
        return context


class LogoutView(auth_views.LogoutView):
    next_page = "web:login"


def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect("web:login")
    return redirect("web:ask")

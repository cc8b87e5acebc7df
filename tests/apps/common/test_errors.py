"""The error catalogue (``core.errors``) and its one mapping to HTTP (``apps.common.api``)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from core.errors import AttuneError, Conflict, InvalidValue, NotEnoughData, ReferenceNotFound

APPS = Path(__file__).resolve().parents[3] / "apps"


@pytest.mark.parametrize(
    ("error", "status", "body"),
    [
        (
            NotEnoughData("Too few.", needed=8, available=3),
            409,
            {"detail": "Too few.", "needed": 8, "available": 3},
        ),
        (
            NotEnoughData("Too few.", needed=4, available=1, what="users with pairs"),
            409,
            {"detail": "Too few.", "needed": 4, "available": 1, "what": "users with pairs"},
        ),
        (Conflict("Not now."), 409, {"detail": "Not now."}),
        (ReferenceNotFound("interaction", "No 9."), 404, {"interaction": ["No 9."]}),
        (InvalidValue("coefficients", ["a", "b"]), 400, {"coefficients": ["a", "b"]}),
        (InvalidValue("preference", "Too long."), 400, {"preference": ["Too long."]}),
    ],
)
def test_each_domain_error_has_one_http_answer(error: AttuneError, status: int, body: dict):
    from apps.common.api import exception_handler  # not at import: DRF settings import it

    response = exception_handler(error, {})
    assert (response.status_code, response.data) == (status, body)


def test_invalid_value_is_a_value_error_with_its_messages():
    err = InvalidValue("preference", "Too long.")
    assert isinstance(err, ValueError) and str(err) == err.message == "Too long."


def _api_modules(name: str) -> list[Path]:
    return sorted(APPS.glob(f"*/api/{name}"))


def test_views_neither_validate_nor_answer_errors_by_hand():
    """Input is validated with ``apps.common.api.validated``; domain errors are left to the
    exception handler (no view catches them or builds a 409)."""
    for path in _api_modules("*.py"):
        source = path.read_text()
        assert ".is_valid(raise_exception" not in source, path
        assert "HTTP_409" not in source and "NotEnoughData" not in source, path


def test_every_router_viewset_takes_numeric_ids_only():
    for path in _api_modules("urls.py"):
        module = importlib.import_module(f"apps.{path.parent.parent.name}.api.urls")
        router = getattr(module, "router", None)
        for prefix, viewset, _ in router.registry if router else []:
            assert viewset.lookup_value_regex == r"\d+", (prefix, viewset)


def test_every_api_keeps_its_openapi_examples_in_examples_py():
    for path in _api_modules("views.py"):
        assert (path.parent / "examples.py").exists(), path
        assert "OpenApiExample(" not in path.read_text(), path

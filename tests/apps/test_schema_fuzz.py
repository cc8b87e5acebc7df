"""Schemathesis over the whole OpenAPI schema (``/api/schema/``): no input is a server error.

Every operation under ``/api`` and ``/v1`` gets the schema's examples, schemathesis's coverage
cases (boundaries, missing and wrong-typed fields) and fuzzed valid and invalid requests (odd
strings and NUL characters included), sent through the real WSGI application as a normal user
with a personal token; ``/v1/chat/completions`` reaches a real serving process on a tiny style
model. No answer may be a 5xx, and each must conform to the schema (status code, content type,
headers, body); each operation must refuse requests without the token, and undocumented methods.

Bounded for CI: ``ATTUNE_FUZZ_EXAMPLES`` fuzzed requests per operation and mode (default 8),
derandomized so a run is repeatable; raise it for a longer hunt, and set ``ATTUNE_FUZZ_SEED``
for other inputs. Left out: ``/test-api`` (the test suite's own example app, not part of
Attune). Lone UTF-16 surrogates cannot be sent by schemathesis (it generates UTF-8 text);
``tests/apps/common/test_text_input.py`` sends them to every text field.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, Phase, settings
from schemathesis import Case, checks
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.hypothesis.builder import (
    HypothesisTestConfig,
    HypothesisTestMode,
    create_test,
)
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi import checks as openapi_checks
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests.support.serving import serving_process
from tests.support.style_models import build_tiny_style_model

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(900)]

EXAMPLES = int(os.environ.get("ATTUNE_FUZZ_EXAMPLES", "8"))
SEED = int(os.environ["ATTUNE_FUZZ_SEED"]) if os.environ.get("ATTUNE_FUZZ_SEED") else None
KEY = "fuzz-serving-key"
CHECKS = [
    checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.ignored_auth,
    openapi_checks.unsupported_method,
]
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=SEED is None,
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],  # no shrinking: the first failure is reported
)


@pytest.fixture
def api_schema(db) -> OpenApiSchema:
    """The schema as Attune serves it, its requests sent to the WSGI application in-process."""
    return schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())


def fuzz(
    schema: OpenApiSchema, prefix: str, headers: Callable[[], dict[str, str]]
) -> dict[str, set[int]]:
    """Run every operation under ``prefix``, valid then invalid inputs; return the statuses
    each answered.

    Fails listing each operation's first failure (a 5xx, or an answer the schema does not
    allow), with the request that caused it, after trying all of them.
    """
    failures: dict[str, str] = {}
    statuses: dict[str, set[int]] = {}
    operations = [
        result.ok() for result in schema.get_all_operations()
        if result.ok().path.startswith(prefix)
    ]  # fmt: skip
    for operation in operations:
        seen = statuses.setdefault(operation.label, set())
        try:
            run_operation(schema, operation, headers, seen)
        except (Exception, FailureGroup) as exc:  # every operation's failure is reported
            failures[operation.label] = str(exc)[:3000]
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
    return statuses


def run_operation(
    schema: OpenApiSchema,
    operation: APIOperation,
    headers: Callable[[], dict[str, str]],
    seen: set[int],
) -> None:
    """One operation as schemathesis's runner tests it: the schema's examples, the coverage
    cases (boundaries, missing and wrong-typed fields), then fuzzed valid and invalid requests.
    The statuses go into ``seen``."""

    def check(case: Case) -> None:
        response = case.call_and_validate(headers=headers(), checks=CHECKS)
        seen.add(response.status_code)

    config = HypothesisTestConfig(project=schema.config, modes=list(HypothesisTestMode), seed=SEED)
    create_test(operation=operation, test_func=FUZZ(check), config=config)()


def succeeded(statuses: dict[str, set[int]]) -> set[str]:
    return {label for label, seen in statuses.items() if any(200 <= s < 300 for s in seen)}


@pytest.fixture
def bearer(user):
    """A fresh personal token of a normal user, per call (a fuzzed DELETE may revoke one)."""
    from apps.accounts.services import issue_personal_token

    def headers() -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_personal_token(user, 'fuzz').key}"}

    return headers


@pytest.fixture(scope="module")
def serving(django_db_setup, django_db_blocker, tmp_path_factory):
    """A real serving process on a tiny style model (fast even at the largest max_tokens)."""
    from django.conf import settings as django_settings

    var: Path = tmp_path_factory.mktemp("fuzz-var")
    build_tiny_style_model(var)
    with django_db_blocker.unblock(), serving_process(
        var, KEY, django_settings.SECRET_KEY, ATTUNE_SERVING_MAX_WAIT_MS="5",
        ATTUNE_SERVING_DEFAULT_MAX_TOKENS="16",
    ) as (url, adapter_root):  # fmt: skip
        yield url, adapter_root


def test_api_has_no_server_errors(api_schema, bearer):
    statuses = fuzz(api_schema, "/api/", bearer)
    assert len(statuses) > 50
    # the token works: most operations got through to a 2xx at least once
    assert len(succeeded(statuses)) > len(statuses) // 2, statuses


def test_v1_has_no_server_errors(api_schema, bearer, serving, settings):
    url, adapter_root = serving
    settings.ATTUNE_SERVING_URL = url
    settings.ATTUNE_SERVING_KEY = KEY
    settings.ATTUNE_ADAPTER_ROOT = adapter_root
    statuses = fuzz(api_schema, "/v1/", bearer)
    assert set(statuses) == {
        "POST /v1/chat/completions", "GET /v1/models", "GET /v1/models/{model}"
    }  # fmt: skip
    assert "POST /v1/chat/completions" in succeeded(statuses), statuses  # generated for real

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.health.checks import all_checks, serving


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """State of the database, pgvector, broker and workers: 200 when all are ok, else 503. The
    serving replicas are listed beside them (``serving``) without changing the status: the web
    works without generation, and generation works while one replica is up."""
    checks = all_checks()
    ok = all(check["ok"] for check in checks.values())
    return JsonResponse(
        {"status": "ok" if ok else "error", "checks": checks, "serving": serving()},
        status=200 if ok else 503,
    )

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.health.checks import all_checks


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """State of the database, pgvector, broker and workers: 200 when all are ok, else 503."""
    checks = all_checks()
    ok = all(check["ok"] for check in checks.values())
    return JsonResponse(
        {"status": "ok" if ok else "error", "checks": checks}, status=200 if ok else 503
    )

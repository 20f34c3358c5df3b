"""`/metrics` of a web process: this machine's figures, and the database's live matches."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

from arena.matches.errors import error_body
from arena.metrics import access
from arena.metrics.multiprocess import enabled


def render(*, database: bool) -> tuple[bytes, str]:
    """The exposition text of every process of this machine (and, with
    `database`, the live matches); with its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    from arena.metrics.multiprocess import MachineCollector

    registry = CollectorRegistry(auto_describe=False)
    registry.register(MachineCollector())
    if database:
        from arena.metrics.collectors import LiveMatchesCollector

        registry.register(LiveMatchesCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST


def metrics(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return JsonResponse(error_body("method_not_allowed", "GET only."), status=405, headers={"Allow": "GET, HEAD"})
    if not enabled():
        return JsonResponse(error_body("not_found", "Metrics are off (ARENA_METRICS=0)."), status=404)
    if not access.request_allowed(request):
        return JsonResponse(
            error_body("forbidden", "Metrics are served to ARENA_METRICS_ALLOWED addresses or with ARENA_METRICS_TOKEN."),
            status=403,
        )
    body, content_type = render(database=True)
    return HttpResponse(body, content_type=content_type)

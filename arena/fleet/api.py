"""The fleet's HTTP API (staff only): the hosts and draining."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from arena.fleet import selectors, services
from arena.fleet.models import GameHost
from arena.matches.api import ArenaAPIView
from arena.matches.errors import NotFound

ERROR = inline_serializer("FleetError", {"error": serializers.CharField(), "detail": serializers.CharField()})
HOST = inline_serializer(
    "GameHost",
    {
        "name": serializers.CharField(),
        "address": serializers.CharField(),
        "ports": serializers.ListField(child=serializers.IntegerField()),
        "capacity": serializers.IntegerField(),
        "live_matches": serializers.IntegerField(),
        "free": serializers.IntegerField(),
        "draining": serializers.BooleanField(),
        "alive": serializers.BooleanField(),
        "version": serializers.CharField(),
        "last_heartbeat": serializers.DateTimeField(),
    },
)


def host_representation(host: GameHost) -> dict:
    return {
        "name": host.name,
        "address": host.address,
        "ports": [host.min_port, host.max_port],
        "capacity": host.capacity,
        "live_matches": host.live,
        "free": max(0, host.free),
        "draining": host.draining,
        "alive": selectors.host_is_alive(host),
        "version": host.version,
        "started_at": host.started_at.isoformat().replace("+00:00", "Z") if host.started_at else None,
        "last_heartbeat": host.last_heartbeat.isoformat().replace("+00:00", "Z"),
    }


class StaffAPIView(ArenaAPIView):
    """Arena's API conventions (authentication, JSON errors), for staff users only."""

    def get_permissions(self):
        return [*super().get_permissions(), permissions.IsAdminUser()]


class HostListView(StaffAPIView):
    @extend_schema(responses={200: HOST, 401: ERROR, 403: ERROR})
    def get(self, request: Request) -> Response:
        return Response({"hosts": [host_representation(h) for h in selectors.hosts_with_load().order_by("name")]})


class HostDrainView(StaffAPIView):
    @extend_schema(request=None, responses={200: HOST, 401: ERROR, 403: ERROR, 404: ERROR})
    def post(self, request: Request, name: str) -> Response:
        if not services.host_drain(name):
            raise NotFound(f"No game host {name}.")
        return Response(host_representation(selectors.host_get(name)))

"""The WebSocket side of the ASGI application (see `arena.asgi`)."""
from __future__ import annotations

from channels.routing import URLRouter
from django.urls import path

from arena.notifications.auth import NotificationAuthStack
from arena.notifications.consumers import NotificationConsumer

websocket_urlpatterns = [
    path("ws/notifications/", NotificationConsumer.as_asgi(), name="ws-notifications"),
]


def websocket_application():
    return NotificationAuthStack(URLRouter(websocket_urlpatterns))

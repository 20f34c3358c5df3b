"""ASGI entry point: HTTP (Django) and the notification WebSocket (Channels)."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402  (needs Django set up)

application = ProtocolTypeRouter({"http": django_asgi_app})

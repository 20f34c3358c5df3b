"""ASGI entry point: HTTP (Django) and the notification WebSocket (Channels).

`daphne` comes first in INSTALLED_APPS, so `manage.py runserver` serves this same
application; in production run `daphne arena.asgi:application`.
"""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")
django_asgi_app = get_asgi_application()

from arena.security.secret_key import refuse_to_start  # noqa: E402  (needs Django set up)

refuse_to_start()  # Daphne runs no system checks: never serve with a public SECRET_KEY

from channels.routing import ProtocolTypeRouter  # noqa: E402  (needs Django set up)
from django.urls import get_resolver  # noqa: E402

get_resolver().url_patterns  # import every view now, not during the first request (~0.2 s)

from arena.notifications.routing import websocket_application  # noqa: E402

application = ProtocolTypeRouter({"http": django_asgi_app, "websocket": websocket_application()})

"""WSGI entry point (plain HTTP only; the notification WebSocket needs ASGI)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")
application = get_wsgi_application()

from arena.security.secret_key import refuse_to_start  # noqa: E402  (needs Django set up)

refuse_to_start()  # gunicorn runs no system checks: never serve with a public SECRET_KEY

from django.urls import get_resolver  # noqa: E402  (needs Django set up)

get_resolver().url_patterns  # import every view now, not during the first request (~0.2 s)

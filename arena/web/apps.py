from django.apps import AppConfig


class WebConfig(AppConfig):
    """Browser pages: sign-in, lobby, player and spectator views of a match."""

    name = "arena.web"
    label = "web"
    verbose_name = "Arena web client"

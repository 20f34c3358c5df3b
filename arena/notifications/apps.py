from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "arena.notifications"
    label = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from arena.notifications import checks  # noqa: F401  (registers the checks)

from django.apps import AppConfig


class SecurityConfig(AppConfig):
    name = "arena.security"
    label = "security"
    verbose_name = "Security"

    def ready(self) -> None:
        from arena.security import checks  # noqa: F401  (registers the checks)

from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "arena.webhooks"
    label = "arena_webhooks"
    verbose_name = "Match webhooks"
    default_auto_field = "django.db.models.BigAutoField"

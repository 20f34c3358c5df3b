"""Admin pages: the webhook outbox, read-only (to see what was sent, what waits, what failed)."""
from __future__ import annotations

from django.contrib import admin

from arena.webhooks.models import WebhookDelivery


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("event_type", "event_id", "created_at", "attempts", "delivered_at", "gave_up_at", "last_error")
    list_filter = ("event_type",)
    search_fields = ("event_id", "body")
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

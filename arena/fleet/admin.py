"""Admin pages for the fleet: every host with its load and live matches."""
from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html_join

from arena.fleet import selectors, services
from arena.fleet.models import GameHost


@admin.register(GameHost)
class GameHostAdmin(admin.ModelAdmin):
    list_display = ("name", "address", "capacity", "live", "alive", "draining", "version", "last_heartbeat")
    list_filter = ("draining",)
    search_fields = ("name", "address")
    readonly_fields = [f.name for f in GameHost._meta.fields] + ["live_matches"]
    actions = ["drain", "undrain"]

    def get_queryset(self, request):
        return selectors.hosts_with_load()

    def has_add_permission(self, request) -> bool:
        return False  # hosts register themselves (manage.py gamehost)

    @admin.display(description="live", ordering="live")
    def live(self, host: GameHost) -> int:
        return host.live

    @admin.display(description="alive", boolean=True)
    def alive(self, host: GameHost) -> bool:
        return selectors.host_is_alive(host)

    @admin.display(description="live matches")
    def live_matches(self, host: GameHost) -> str:
        matches = selectors.live_matches_of(host.name)
        if not matches:
            return "-"
        return format_html_join(
            ", ", '<a href="/admin/matches/match/{}/change/">{}</a> ({})', ((m.pk, m.pk, m.status) for m in matches)
        )

    @admin.action(description="Drain: no new matches (running ones play on)")
    def drain(self, request, queryset) -> None:
        done = sum(services.host_drain(h.name) for h in queryset)
        self.message_user(request, f"Draining {done} host(s).", messages.SUCCESS)

    @admin.action(description="Accept new matches again")
    def undrain(self, request, queryset) -> None:
        done = sum(services.host_drain(h.name, draining=False) for h in queryset)
        self.message_user(request, f"{done} host(s) accept matches again.", messages.SUCCESS)

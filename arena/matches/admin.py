"""Admin pages. Read-mostly: status changes go through the services, never a form."""
from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth import get_user_model

from arena.matches import services
from arena.matches.models import Match, MatchPlayer
from arena.matches.states import LIVE_STATUSES


LOGIN = get_user_model().USERNAME_FIELD  # the users' login field, whatever the user model


class MatchPlayerInline(admin.TabularInline):
    model = MatchPlayer
    extra = 0
    fields = ("seat", "user", "side", "score", "live")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Match)
class MatchAdmin(admin.ModelAdmin):
    list_display = ("id", "status", "players_list", "winner", "host_name", "host", "port", "created_at", "finished_at")
    list_filter = ("status", "host_name")
    search_fields = ("id", f"players__user__{LOGIN}")
    readonly_fields = [f.name for f in Match._meta.fields]
    inlines = [MatchPlayerInline]
    actions = ["cancel_matches"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("winner").prefetch_related("players__user")

    @admin.display(description="players")
    def players_list(self, match: Match) -> str:
        return " vs ".join(p.user.get_username() for p in match.players.all())

    def has_add_permission(self, request) -> bool:
        return False  # matches are created through the API or the lobby, which launch them

    @admin.action(description="Cancel the selected live matches")
    def cancel_matches(self, request, queryset) -> None:
        done = sum(
            services.match_stop(m.pk, reason=f"cancelled by {request.user.get_username()}")
            for m in queryset.filter(status__in=LIVE_STATUSES)
        )
        self.message_user(request, f"Cancelled {done} match(es).", messages.SUCCESS)


@admin.register(MatchPlayer)
class MatchPlayerAdmin(admin.ModelAdmin):
    list_display = ("match", "user", "side", "score", "live")
    list_filter = ("side", "live")
    search_fields = (f"user__{LOGIN}", "match__id")
    readonly_fields = ("match", "user", "side", "seat", "score", "live")

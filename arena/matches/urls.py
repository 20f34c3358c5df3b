from django.apps import apps
from django.urls import path, re_path

from arena.matches import api

# `POST auth/token` hands out REST framework tokens: only with its authtoken app.
urlpatterns = [
    path("auth/token", api.AuthTokenView.as_view(), name="api-auth-token")
] if apps.is_installed("rest_framework.authtoken") else []
urlpatterns += [
    re_path(r"^match/?$", api.MatchCreateView.as_view(), name="api-match-create"),
    path("match/<str:match_id>", api.MatchDetailView.as_view(), name="api-match-detail"),
    path("match/<str:match_id>/token", api.MatchTokenView.as_view(), name="api-match-token"),
    path("match/<str:match_id>/replay", api.MatchReplayView.as_view(), name="api-match-replay"),
    path("match/<str:match_id>/replay/frames", api.MatchReplayFramesView.as_view(), name="api-match-replay-frames"),
]

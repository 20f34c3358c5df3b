from django.urls import path, re_path

from arena.matches import api

urlpatterns = [
    path("auth/token", api.AuthTokenView.as_view(), name="api-auth-token"),
    re_path(r"^match/?$", api.MatchCreateView.as_view(), name="api-match-create"),
    path("match/<str:match_id>", api.MatchDetailView.as_view(), name="api-match-detail"),
    path("match/<str:match_id>/token", api.MatchTokenView.as_view(), name="api-match-token"),
]

from django.urls import path

from arena.lobby import api

urlpatterns = [
    path("lobby", api.LobbyView.as_view(), name="api-lobby"),
    path("lobby/challenge", api.ChallengeView.as_view(), name="api-lobby-challenge"),
    path("lobby/quickplay", api.QuickPlayView.as_view(), name="api-lobby-quickplay"),
    path("lobby/bot", api.BotView.as_view(), name="api-lobby-bot"),
]

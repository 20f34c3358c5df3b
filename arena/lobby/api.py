"""The lobby's JSON API for the browser (session auth) and scripts (token auth)."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from arena.lobby import services
from arena.matches import selectors
from arena.matches.api import ERROR, MATCH, ArenaAPIView, validated
from arena.matches.serializers import match_representation


class ChallengeInput(serializers.Serializer):
    opponent = serializers.CharField(max_length=150)
    points_to_win = serializers.IntegerField(required=False, default=5, min_value=1, max_value=21)


class PlayInput(serializers.Serializer):
    points_to_win = serializers.IntegerField(required=False, default=5, min_value=1, max_value=21)


def _body(request: Request) -> dict:
    return request.data if request.data else {}


class LobbyView(ArenaAPIView):
    @extend_schema(
        responses=inline_serializer(
            "Lobby",
            {
                "me": serializers.CharField(),
                "my_match": serializers.DictField(allow_null=True),
                "queued": serializers.BooleanField(),
                "live": serializers.ListField(child=serializers.DictField()),
                "recent": serializers.ListField(child=serializers.DictField()),
            },
        )
    )
    def get(self, request: Request) -> Response:
        mine = selectors.match_live_for_user(request.user)
        return Response(
            {
                "me": request.user.get_username(),
                "my_match": match_representation(mine) if mine else None,
                "queued": services.lobby_is_queued(request.user),
                "live": [match_representation(m) for m in selectors.matches_live()],
                "recent": [match_representation(m) for m in selectors.matches_recent()],
            }
        )


class ChallengeView(ArenaAPIView):
    @extend_schema(request=ChallengeInput, responses={201: MATCH, 400: ERROR, 409: ERROR, 503: ERROR})
    def post(self, request: Request) -> Response:
        data = validated(ChallengeInput, _body(request))
        match = services.lobby_challenge(
            user=request.user, opponent=data["opponent"], points_to_win=data["points_to_win"]
        )
        return Response(match_representation(match), status=status.HTTP_201_CREATED)


class QuickPlayView(ArenaAPIView):
    @extend_schema(request=PlayInput, responses={201: MATCH, 202: ERROR, 409: ERROR, 503: ERROR})
    def post(self, request: Request) -> Response:
        data = validated(PlayInput, _body(request))
        match = services.lobby_quickplay_join(user=request.user, points_to_win=data["points_to_win"])
        if match is None:
            return Response({"queued": True}, status=status.HTTP_202_ACCEPTED)
        return Response(match_representation(match), status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: inline_serializer("Queued", {"queued": serializers.BooleanField()})})
    def delete(self, request: Request) -> Response:
        services.lobby_quickplay_leave(user=request.user)
        return Response({"queued": False})


class BotView(ArenaAPIView):
    @extend_schema(request=PlayInput, responses={201: MATCH, 409: ERROR, 503: ERROR})
    def post(self, request: Request) -> Response:
        data = validated(PlayInput, _body(request))
        match = services.lobby_play_bot(user=request.user, points_to_win=data["points_to_win"])
        return Response(match_representation(match), status=status.HTTP_201_CREATED)

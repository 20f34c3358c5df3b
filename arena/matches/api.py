"""The match HTTP API. Views only translate HTTP to service calls and back."""
from __future__ import annotations

from django.conf import settings
from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from arena.matches import selectors, services
from arena.matches.errors import InvalidCredentials, InvalidRequest, NotAPlayer
from arena.matches.serializers import MatchCreateInput, TokenInput, match_representation
from arena.matches.tokens import game_token_issue
from arena.security import throttle

ERROR = inline_serializer("Error", {"error": serializers.CharField(), "detail": serializers.CharField()})
MATCH = inline_serializer(
    "Match",
    {
        "id": serializers.UUIDField(),
        "status": serializers.CharField(),
        "host": serializers.CharField(allow_null=True),
        "port": serializers.IntegerField(allow_null=True),
        "players": serializers.ListField(child=serializers.DictField()),
        "points_to_win": serializers.IntegerField(),
        "score": serializers.DictField(child=serializers.IntegerField()),
        "winner": serializers.CharField(allow_null=True),
        "finish_reason": serializers.CharField(allow_null=True),
        "created_at": serializers.DateTimeField(),
        "started_at": serializers.DateTimeField(allow_null=True),
        "finished_at": serializers.DateTimeField(allow_null=True),
    },
)


def validated(serializer_class, data) -> dict:
    if not isinstance(data, dict):
        raise InvalidRequest("The body must be a JSON object.")
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class CanCreateMatch(permissions.BasePermission):
    message = "You need the permission matches.add_match to create matches."

    def has_permission(self, request: Request, view) -> bool:
        return bool(request.user and request.user.has_perm("matches.add_match"))


class AuthTokenView(APIView):
    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        request=TokenInput,
        responses={
            200: inline_serializer("Token", {"token": serializers.CharField()}), 400: ERROR, 401: ERROR, 429: ERROR,
        },
    )
    def post(self, request: Request) -> Response:
        """Throttled per address and per name (arena.security.throttle): 429 `throttled`."""
        data = validated(TokenInput, request.data)
        user = throttle.attempt(
            request._request,
            data["username"],
            lambda: authenticate(request._request, username=data["username"], password=data["password"]),
        )
        if user is None:
            raise InvalidCredentials("Wrong username or password.")
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})


class MatchCreateView(APIView):
    permission_classes = [permissions.IsAuthenticated, CanCreateMatch]

    @extend_schema(
        request=MatchCreateInput,
        responses={200: MATCH, 201: MATCH, 400: ERROR, 401: ERROR, 403: ERROR, 409: ERROR, 503: ERROR},
    )
    def put(self, request: Request) -> Response:
        data = validated(MatchCreateInput, request.data)
        match, created = services.match_create(
            usernames=data["players"],
            points_to_win=data["points_to_win"],
            match_id=data["id"],
            created_by=request.user,
        )
        headers = {"Location": f"/api/match/{match.id}"}
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(match_representation(match), status=code, headers=headers)


class MatchDetailView(APIView):
    @extend_schema(responses={200: MATCH, 401: ERROR, 404: ERROR})
    def get(self, request: Request, match_id: str) -> Response:
        return Response(match_representation(selectors.match_get(match_id)))


class MatchTokenView(APIView):
    @extend_schema(
        responses={
            200: inline_serializer("GameToken", {"token": serializers.CharField(), "expires_in": serializers.IntegerField()}),
            401: ERROR,
            403: ERROR,
            404: ERROR,
        }
    )
    def get(self, request: Request, match_id: str) -> Response:
        match = selectors.match_get(match_id)
        if selectors.match_seat(match, request.user.pk) is None:
            raise NotAPlayer("Only the players of this match get a game token.")
        token = game_token_issue(user_id=request.user.pk, match_id=match.id)
        return Response({"token": token, "expires_in": settings.GAME_TOKEN_MAX_AGE})

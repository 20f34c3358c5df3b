"""The match HTTP API. Views only translate HTTP to service calls and back.

Who may call it is the host project's choice (see `ArenaAPIView`): its
authentication and permission classes are settings, so a site with session
auth, JWT or a scheme of its own plugs in without changing Arena.
"""
from __future__ import annotations

import gzip
import re

from arena.conf import settings
from django.contrib.auth import authenticate
from django.http import HttpResponse, HttpResponseNotModified
from django.utils.cache import patch_vary_headers
from django.utils.decorators import method_decorator
from django.utils.http import parse_etags
from django.utils.module_loading import import_string
from django.views.decorators.gzip import gzip_page
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from arena.matches import replays, selectors, services
from arena.matches.errors import ArenaError, InvalidCredentials, InvalidRequest, MatchOver, NotAPlayer, PermissionDenied
from arena.matches.http_errors import exception_handler
from arena.matches.serializers import MatchBatchInput, MatchCreateInput, TokenInput, match_representation
from arena.matches.tokens import game_token_issue
from arena.security import throttle

ERROR = inline_serializer("Error", {"error": serializers.CharField(), "detail": serializers.CharField()})
MATCH_FIELDS = {
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
}
MATCH = inline_serializer("Match", MATCH_FIELDS)

BATCH_RESULTS = inline_serializer(
    "MatchBatchResults",
    {
        "results": serializers.ListField(
            child=inline_serializer(
                "MatchBatchResult",
                {
                    "status": serializers.IntegerField(),
                    "match": type(MATCH)(required=False),  # the same "Match" component
                    "error": serializers.CharField(required=False),
                    "detail": serializers.CharField(required=False),
                },
            )
        )
    },
)


def validated(serializer_class, data) -> dict:
    if not isinstance(data, dict):
        raise InvalidRequest("The body must be a JSON object.")
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _classes(value) -> list:
    return [import_string(item) if isinstance(item, str) else item for item in value]


class ArenaAPIView(APIView):
    """The base of every Arena API view, whatever the host's REST_FRAMEWORK says.

    * authentication: `ARENA_API_AUTHENTICATION_CLASSES` (import paths), else the
      project's `REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]`;
    * permissions: `ARENA_API_PERMISSION_CLASSES` (default: authenticated users),
      plus `extra_permission_setting` for views that need more;
    * JSON in, JSON out, and every error as `{"error": code, "detail": message}`.

    Settings are read per request, so `override_settings` applies.
    """

    renderer_classes = [JSONRenderer]
    parser_classes = [JSONParser]
    extra_permission_setting: str | None = None
    public = False  # True: open to anyone, with no authentication (the token endpoint)

    def get_authenticators(self):
        configured = settings.ARENA_API_AUTHENTICATION_CLASSES
        if self.public:
            return []
        if configured is None:
            return super().get_authenticators()
        return [cls() for cls in _classes(configured)]

    def get_permissions(self):
        if self.public:
            return [permissions.AllowAny()]
        configured = settings.ARENA_API_PERMISSION_CLASSES
        classes = _classes(["rest_framework.permissions.IsAuthenticated"] if configured is None else configured)
        if self.extra_permission_setting:
            classes += _classes(getattr(settings, self.extra_permission_setting))
        return [cls() for cls in classes]

    def get_exception_handler(self):
        return exception_handler


class CanCreateMatch(permissions.BasePermission):
    """The default of `ARENA_CREATE_MATCH_PERMISSION_CLASSES`: Django's `matches.add_match`."""

    message = "You need the permission matches.add_match to create matches."

    def has_permission(self, request: Request, view) -> bool:
        return bool(request.user and request.user.has_perm("matches.add_match"))


class AuthTokenView(ArenaAPIView):
    """Trade a login and password for an API token (Django REST framework's
    `authtoken`; mounted only when the project installs it)."""

    public = True

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
        from rest_framework.authtoken.models import Token

        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})


class MatchCreateView(ArenaAPIView):
    extra_permission_setting = "ARENA_CREATE_MATCH_PERMISSION_CLASSES"

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


class MatchBatchCreateView(ArenaAPIView):
    """Many matches in one request, for matchmakers: the request path is paid once
    and the launches overlap (`services.matches_create`)."""

    extra_permission_setting = "ARENA_CREATE_MATCH_PERMISSION_CLASSES"

    @extend_schema(
        request=MatchBatchInput,
        responses={200: BATCH_RESULTS, 400: ERROR, 401: ERROR, 403: ERROR},
    )
    def put(self, request: Request) -> Response:
        """Each entry is a `PUT /api/match` body and gets that endpoint's answer, in
        order: `{"status": 201|200, "match": …}` or `{"status": 4xx|503, "error",
        "detail"}`. 200 once the batch was processed, whatever its entries came to;
        400 only for the envelope (not `{"matches": [...]}`, empty, over the cap)."""
        entries = batch_entries(request.data)
        answers: list[dict | None] = [None] * len(entries)
        wanted: list[tuple[int, services.MatchRequest]] = []
        for index, entry in enumerate(entries):
            try:
                data = validated(MatchCreateInput, entry)
            except (ArenaError, exceptions.ValidationError) as error:
                answers[index] = error_answer(error)
                continue
            wanted.append((index, services.MatchRequest(data["players"], data["points_to_win"], data["id"])))
        outcomes = services.matches_create([entry for _, entry in wanted], created_by=request.user)
        for (index, _), outcome in zip(wanted, outcomes, strict=True):
            if isinstance(outcome, ArenaError):
                answers[index] = error_answer(outcome)
            else:
                match, created = outcome
                answers[index] = {"status": status.HTTP_201_CREATED if created else status.HTTP_200_OK,
                                  "match": match_representation(match)}
        return Response({"results": answers})


def batch_entries(data) -> list:
    """The entries of a `PUT /api/matches` body; InvalidRequest for a bad envelope."""
    if not isinstance(data, dict) or not isinstance(data.get("matches"), list):
        raise InvalidRequest('The body must be a JSON object {"matches": [...]}.')
    entries = data["matches"]
    cap = settings.GAME_BATCH_MAX_MATCHES
    if not 1 <= len(entries) <= cap:
        raise InvalidRequest(f"matches must hold between 1 and {cap} matches (has {len(entries)}).")
    return entries


def error_answer(error: ArenaError | exceptions.ValidationError) -> dict:
    """An entry's error, as the single endpoint would have answered it (status, body)."""
    response = exception_handler(error, {})
    return {"status": response.status_code, **response.data}


class MatchDetailView(ArenaAPIView):
    @extend_schema(responses={200: MATCH, 401: ERROR, 404: ERROR})
    def get(self, request: Request, match_id: str) -> Response:
        return Response(match_representation(selectors.match_get(match_id)))

    @extend_schema(responses={200: MATCH, 401: ERROR, 403: ERROR, 404: ERROR, 409: ERROR})
    def delete(self, request: Request, match_id: str) -> Response:
        """Cancel a live match: its game server, wherever it runs, stops at once."""
        match = selectors.match_get(match_id)
        if not (request.user.has_perm("matches.change_match") or match.created_by_id == request.user.pk):
            raise PermissionDenied("Only the match's creator or a user with matches.change_match may cancel it.")
        if not services.match_stop(match.pk, reason=f"cancelled by {request.user.get_username()}"):
            match = selectors.match_get(match.pk)
            raise MatchOver(f"Match {match.pk} is already {match.status}.")
        return Response(match_representation(selectors.match_get(match.pk)))


class MatchTokenView(ArenaAPIView):
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


REPLAY = inline_serializer(
    "Replay",
    {
        "format": serializers.IntegerField(),
        "match": serializers.UUIDField(),
        "rules": serializers.DictField(),
        "seed": serializers.IntegerField(),
        "tick_rate": serializers.IntegerField(),
        "snapshot_every": serializers.IntegerField(),
        "players": serializers.ListField(child=serializers.DictField()),
        "inputs": serializers.ListField(child=serializers.DictField()),
        "repeats": serializers.ListField(child=serializers.DictField()),
        "pauses": serializers.ListField(child=serializers.DictField()),
        "points": serializers.ListField(child=serializers.DictField()),
        "end": serializers.DictField(),
        "digest": serializers.DictField(),
    },
)
REPLAY_FRAMES = inline_serializer(
    "ReplayFrames",
    {
        "match": serializers.UUIDField(),
        "tick_rate": serializers.IntegerField(),
        "frame_every": serializers.IntegerField(),
        "field": serializers.DictField(),
        "players": serializers.ListField(child=serializers.DictField()),
        "frames": serializers.ListField(child=serializers.DictField()),
        "points": serializers.ListField(child=serializers.DictField()),
        "pauses": serializers.ListField(child=serializers.DictField()),
        "end": serializers.DictField(),
        "verified": serializers.BooleanField(),
    },
)


ACCEPTS_GZIP = re.compile(r"\bgzip\b")  # as Django's GZipMiddleware reads Accept-Encoding

# Replays are large, repetitive JSON (a 5-minute match's frames are ~1.5 MB, about a
# tenth of that compressed): compressed for clients that accept it.
@method_decorator(gzip_page, name="dispatch")
class MatchReplayView(ArenaAPIView):
    """The recording of an ended match: seed, rules, applied inputs, pauses, points,
    end and snapshot digest (docs/protocol.md). Readable by whoever may read the match."""

    @extend_schema(responses={200: REPLAY, 401: ERROR, 404: ERROR})
    def get(self, request: Request, match_id: str) -> Response:
        return Response(replays.replay_get(match_id))


class MatchReplayFramesView(ArenaAPIView):
    """The replay played again through this server's rules: every snapshot as it was
    broadcast, for a viewer to draw. 409 `replay_rules_mismatch` if the match was
    recorded with rules this server does not run.

    Sent as the replays module keeps it, compressed (decompressed for a client that
    does not accept gzip), with an ETag: a viewer that has it already gets a 304."""

    @extend_schema(responses={200: REPLAY_FRAMES, 304: None, 401: ERROR, 404: ERROR, 409: ERROR})
    def get(self, request: Request, match_id: str) -> HttpResponse:
        body = replays.replay_frames_body(match_id)
        etag = f'W/"{body.tag}"'  # weak: the same document, whichever encoding carries it
        if set(parse_etags(request.headers.get("If-None-Match", ""))) & {"*", etag, f'"{body.tag}"'}:
            response = HttpResponseNotModified()
        elif ACCEPTS_GZIP.search(request.headers.get("Accept-Encoding", "")):
            response = HttpResponse(body.gzipped, content_type="application/json")
            response["Content-Encoding"] = "gzip"
        else:
            response = HttpResponse(gzip.decompress(body.gzipped), content_type="application/json")
        response["ETag"] = etag
        patch_vary_headers(response, ("Accept-Encoding",))
        return response

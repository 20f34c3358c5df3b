"""What a signed-in person can do from the lobby.

Every way into a game ends in `arena.matches.services.match_create`, the same call
as `PUT /api/match`: the lobby adds who plays whom, never another launcher.
"""
from __future__ import annotations

import logging
import subprocess
import sys

from arena.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import transaction

from arena.lobby.models import QuickPlayEntry
from arena.matches import selectors, services
from arena.matches.errors import InvalidRequest, PlayerBusy, UnknownPlayer
from arena.matches.launcher.base import child_environment, log_path
from arena.matches.launcher.process import Reaper
from arena.matches.models import Match
from arena.matches.tokens import game_token_issue

logger = logging.getLogger("arena.lobby")
BOTS_GROUP = "bots"
_bot_reaper = Reaper()


def _ensure_free(user: AbstractBaseUser) -> None:
    if selectors.match_live_for_user(user) is not None:
        raise PlayerBusy("You are already in a live match.")


def lobby_challenge(*, user: AbstractBaseUser, opponent: str, points_to_win: int = 5) -> Match:
    """Start a match against a named user right away."""
    if not isinstance(opponent, str) or not opponent:
        raise InvalidRequest("Name the user to challenge.")
    if opponent == user.get_username():
        raise InvalidRequest("You cannot challenge yourself.")
    User = get_user_model()
    if not User.objects.filter(**{User.USERNAME_FIELD: opponent, "is_active": True}).exists():
        raise UnknownPlayer(f"No user {opponent!r}.")
    _ensure_free(user)
    QuickPlayEntry.objects.filter(user=user).delete()
    match, _ = services.match_create(
        usernames=[user.get_username(), opponent], points_to_win=points_to_win, created_by=user
    )
    return match


def lobby_quickplay_join(*, user: AbstractBaseUser, points_to_win: int = 5) -> Match | None:
    """Pair with the longest-waiting user, or wait in the queue (None)."""
    _ensure_free(user)
    with transaction.atomic():
        opponent_entry = (
            QuickPlayEntry.objects.select_for_update()
            .exclude(user=user)
            .select_related("user")
            .order_by("created_at")
            .first()
        )
        if opponent_entry is None:
            QuickPlayEntry.objects.update_or_create(user=user, defaults={"points_to_win": points_to_win})
            return None
        opponent_entry.delete()
        QuickPlayEntry.objects.filter(user=user).delete()
    opponent = opponent_entry.user
    match, _ = services.match_create(
        usernames=[opponent.get_username(), user.get_username()],
        points_to_win=opponent_entry.points_to_win,
        created_by=user,
    )
    return match


def lobby_quickplay_leave(*, user: AbstractBaseUser) -> None:
    QuickPlayEntry.objects.filter(user=user).delete()


def lobby_is_queued(user: AbstractBaseUser) -> bool:
    return QuickPlayEntry.objects.filter(user=user).exists()


def lobby_play_bot(*, user: AbstractBaseUser, points_to_win: int = 5) -> Match:
    """Start a match against a bot process that joins as the opponent."""
    _ensure_free(user)
    QuickPlayEntry.objects.filter(user=user).delete()
    bot = _free_bot()
    match, _ = services.match_create(
        usernames=[user.get_username(), bot.get_username()], points_to_win=points_to_win, created_by=user
    )
    _start_bot(match, bot)
    return match


def _free_bot() -> AbstractBaseUser:
    """A bot account with no live match; bots are ordinary users in the `bots` group."""
    group, _ = Group.objects.get_or_create(name=BOTS_GROUP)
    busy = selectors.users_in_live_matches()
    for bot in group.user_set.order_by("pk"):
        if bot.pk not in busy:
            return bot
    User = get_user_model()
    base = settings.GAME_BOT_USERNAME
    n = group.user_set.count() + 1
    name = base if n == 1 else f"{base}-{n}"
    while User.objects.filter(**{User.USERNAME_FIELD: name}).exists():
        n += 1
        name = f"{base}-{n}"
    bot = User.objects.create_user(**{User.USERNAME_FIELD: name})  # no usable password: it only plays
    group.user_set.add(bot)
    return bot


def _start_bot(match: Match, bot: AbstractBaseUser) -> None:
    token = game_token_issue(user_id=bot.pk, match_id=match.id)
    command = [sys.executable, "-m", "arena.bot", "--host", match.host, "--port", str(match.port)]
    env = child_environment() | {"ARENA_BOT_TOKEN": token}  # not on the command line, where ps shows it
    with open(log_path(match.id).with_suffix(".bot.log"), "ab") as log:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            cwd=settings.BASE_DIR,
            start_new_session=True,
        )
    _bot_reaper.watch(proc)
    logger.info("bot %s (pid %s) joins match %s", bot.get_username(), proc.pid, match.id)

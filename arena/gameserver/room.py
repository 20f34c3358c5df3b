"""One match, served over Socket.IO: the room around a game.

The room decides who is a player, queues their inputs, feeds them to the game
(`arena.gameserver.game.Game`) on the process's fixed timestep (`Ticker`),
broadcasts what the game shows, and records the result through the match
services. It knows nothing of the game's rules: any game behind that interface is
played the same way, and an exception in the game's code ends this match alone,
as ``failed``, whatever else the process is serving.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import socketio
from asgiref.sync import sync_to_async

from arena.gameserver import wire
from arena.gameserver.broadcast import Broadcaster
from arena.gameserver.clock import LoopStats
from arena.gameserver.contract import MatchInfo
from arena.gameserver.game import Game, GameFactory
from arena.gameserver.heartbeat import Heartbeat
from arena.gameserver.metrics import RoomStats
from arena.gameserver.recorder import Recorder
from arena.gameserver.store import MatchStore
from arena.gameserver.ticker import Ticker
from arena.matches.tokens import game_token_user_id

logger = logging.getLogger("arena.gameserver")

INPUT_QUEUE = 8  # inputs kept per player between ticks; older ones are dropped first
FLUSH_DELAY = 0.3  # time for the last events to leave before sockets close
# How long a client may take to collect its last events (a long-polling client gets
# them only with its next request, which a busy client may send late) before its
# connection is closed anyway.
CLOSE_TIMEOUT = 5.0


@dataclass(frozen=True)
class GameSettings:
    tick_rate: int = 60
    snapshot_rate: int = 30
    countdown: float = 3.0
    connect_timeout: float = 60.0
    reconnect_grace: float = 15.0
    max_spectators: int = 1000
    max_duration: float = 900.0
    heartbeat_interval: float = 5.0
    input_rate_limit: int = 120  # per player per second
    cors_origins: tuple[str, ...] | str = "*"
    max_message_bytes: int = 16 * 1024
    direct_broadcast: bool = True
    record_replays: bool = True

    @classmethod
    def from_django(cls) -> GameSettings:
        from arena.conf import settings as s

        origins = s.GAME_CORS_ORIGINS
        return cls(
            tick_rate=s.GAME_TICK_RATE,
            snapshot_rate=s.GAME_SNAPSHOT_RATE,
            countdown=min(3.0, s.GAME_COUNTDOWN),
            connect_timeout=s.GAME_PLAYER_CONNECT_TIMEOUT,
            reconnect_grace=s.GAME_RECONNECT_GRACE,
            max_spectators=s.GAME_MAX_SPECTATORS,
            max_duration=s.GAME_MAX_DURATION,
            heartbeat_interval=s.GAME_HEARTBEAT_INTERVAL,
            cors_origins="*" if origins == ["*"] else tuple(origins),
            direct_broadcast=s.GAME_DIRECT_BROADCAST,
            record_replays=s.GAME_RECORD_REPLAYS,
        )


@dataclass
class Outcome:
    """How the match ended, as recorded."""

    status: str  # finished | cancelled | failed | refused (the match had ended elsewhere: nothing written)
    reason: str
    winner: str | None = None
    score: dict[str, int] = field(default_factory=dict)


class RateLimiter:
    """At most `limit` events per one-second window."""

    __slots__ = ("limit", "window", "count")

    def __init__(self, limit: int) -> None:
        self.limit, self.window, self.count = limit, 0, 0

    def allow(self, now: float) -> bool:
        window = int(now)
        if window != self.window:
            self.window, self.count = window, 0
        self.count += 1
        return self.count <= self.limit


class Room:
    """One match's lifecycle around its `game`; see the module docstring."""

    def __init__(
        self,
        info: MatchInfo,
        store: MatchStore,
        settings: GameSettings,
        game: Game,
        ticker: Ticker,
        heartbeat: Heartbeat | None = None,
        seed: int | None = None,
    ) -> None:
        self.info = info
        self.store = store
        self.settings = settings
        self.game = game
        self.ticker = ticker
        self.heartbeat = heartbeat
        self.phase = "waiting"
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp",
            cors_allowed_origins=list(settings.cors_origins) if settings.cors_origins != "*" else "*",
            max_http_buffer_size=settings.max_message_bytes,
            ping_interval=5,
            ping_timeout=5,
            async_handlers=False,
            logger=False,
            engineio_logger=False,
        )
        self.broadcast = Broadcaster(self.sio, direct=settings.direct_broadcast)
        self.sio.on("connect", self.on_connect)
        self.sio.on("disconnect", self.on_disconnect)
        self.sio.on(wire.INPUT, self.on_input)
        self.sio.on(wire.PING, self.on_ping)
        self.sio.on("*", self.on_unknown)

        self.clients: dict[str, int | None] = {}  # sid -> user id (None: spectator)
        self.player_sid: dict[int, str] = {}  # user id -> its current sid
        self.inputs: dict[str, deque[tuple[int, Any]]] = {s.side: deque(maxlen=INPUT_QUEUE) for s in info.seats}
        self.acks: dict[str, int] = {side: 0 for side in game.sides}
        self.limiters: dict[int, RateLimiter] = {s.user_id: RateLimiter(settings.input_rate_limit) for s in info.seats}
        self.all_present = asyncio.Event()
        self.shutdown = asyncio.Event()
        self.shutdown_reason = "shutdown"
        self.crash: BaseException | None = None  # an exception of the game's: the match fails
        self.outbox: list[tuple[str, dict]] = []
        self.snapshot_every = max(1, round(settings.tick_rate / settings.snapshot_rate))
        self.play_time = 0.0
        self.loop_stats = LoopStats()
        self.stats = RoomStats()  # plain counts for the process's metrics and the end-of-match line
        self.outcome: Outcome | None = None
        self.background: set[asyncio.Task] = set()  # fire-and-forget work, kept referenced
        # while playing, kept between the ticker's calls
        self._score = dict(game.score())
        self._next_snapshot = 0
        self._result: tuple[str, str | None] | None = None  # (reason, winner side)
        # The replay (arena.gameserver.recorder), when the seed is known, recording is
        # on and the game can describe its rules and actions (every game of Arena does).
        self.recorder: Recorder | None = None
        if seed is not None and settings.record_replays and hasattr(game, "rules") and hasattr(game, "encode_action"):
            self.recorder = Recorder(game, seed=seed, tick_rate=settings.tick_rate, snapshot_every=self.snapshot_every)
        self.played = False  # play started at least once: a replay is kept with the result

    @classmethod
    def create(
        cls,
        info: MatchInfo,
        store: MatchStore,
        settings: GameSettings,
        rules: GameFactory,
        ticker: Ticker,
        heartbeat: Heartbeat | None = None,
        seed: int | None = None,
    ) -> Room:
        """A room for `info` with a new game from `rules` (a random seed unless given)."""
        seed = seed if seed is not None else random.randrange(2**32)
        game = rules(seed=seed, points_to_win=info.points_to_win)
        return cls(info, store, settings, game, ticker, heartbeat, seed=seed)

    # --- who is here -------------------------------------------------------------

    def missing(self) -> list[str]:
        return [s.username for s in self.info.seats if s.user_id not in self.player_sid]

    def connected(self) -> list[str]:
        return [s.username for s in self.info.seats if s.user_id in self.player_sid]

    def spectator_count(self) -> int:
        return sum(1 for user in self.clients.values() if user is None)

    def presence(self) -> dict[str, list[str]]:
        return {"connected": self.connected(), "missing": self.missing()}

    def snapshot(self) -> dict:
        return self.game.snapshot(self.acks)

    async def broadcast_state(self, state: tuple[dict, str | None] | None = None) -> None:
        """Broadcast a ``state`` snapshot (`state`: one `recorded_state` made already)."""
        payload, encoded = state or self.recorded_state()
        await self.broadcast(wire.STATE, payload, encoded=encoded)

    def recorded_state(self) -> tuple[dict, str | None]:
        """A snapshot about to be broadcast, and its packet once the recorder has
        covered it with the replay's digest."""
        payload = self.game.snapshot(self.acks)
        if self.recorder is None:
            return payload, None
        try:
            return payload, self.recorder.snapshot(self.game.tick, payload)
        except TypeError:  # not plain JSON (binary parts): broadcast as is, unrecorded
            logger.warning("snapshots of this game are not JSON: match %s is not recorded", self.info.id)
            self.recorder = None
            return payload, None

    # --- Socket.IO handlers --------------------------------------------------------
    # Handlers take *args: a client may send any number of arguments, and
    # python-socketio also hands a client-sent "connect"/"disconnect" *event* to
    # these same handlers, which must not be mistaken for the real thing.

    async def on_connect(self, sid: str, environ: Any = None, auth: Any = None, *extra: Any) -> bool | None:
        if sid in self.clients or not isinstance(environ, dict):
            return None  # a client-sent "connect" event, not a connection
        if self.phase == "over":
            raise _refusal("match_over", "The match is over.")
        token = auth.get("token") if isinstance(auth, dict) else None
        seat = None
        if token is not None:
            user_id = await sync_to_async(game_token_user_id)(token, match_id=self.info.id)
            seat = self.info.seat_of(user_id)
        if seat is None and self.spectator_count() >= self.settings.max_spectators:
            raise _refusal("spectators_full", "This match has as many spectators as it can take.")
        if seat is not None:
            previous = self.player_sid.get(seat.user_id)
            self.player_sid[seat.user_id] = sid
            if previous is not None:
                self.clients.pop(previous, None)
                self._in_background(self._replace(previous))
        self.clients[sid] = seat.user_id if seat else None
        self.stats.seen(len(self.player_sid), len(self.clients) - len(self.player_sid))
        self._in_background(self._welcome(sid, seat))
        if not self.missing():
            self.all_present.set()
        return True

    async def _welcome(self, sid: str, seat) -> None:
        # Sent once the connection is complete: events emitted inside the connect
        # handler would reach the client before its CONNECT packet.
        for _ in range(50):
            if self.sio.manager.is_connected(sid, "/"):
                break
            await asyncio.sleep(0.01)
        try:
            field, state = self.game.describe(), self.snapshot()
        except Exception as error:
            self.fail(error)
            return
        await self.sio.emit(
            wire.WELCOME,
            {
                "role": "player" if seat else "spectator",
                "side": seat.side if seat else None,
                "match": self.info.public(),
                "field": field,
                "tick_rate": self.settings.tick_rate,
                "snapshot_rate": self.settings.tick_rate / self.snapshot_every,
                "phase": self.phase,
                "state": state,
                **self.presence(),
            },
            to=sid,
        )
        if seat:
            await self.broadcast(wire.PRESENCE, self.presence())

    async def _replace(self, old_sid: str) -> None:
        await self.sio.emit(
            wire.ERROR, wire.error("replaced", "Another connection took over this player."), to=old_sid
        )
        await self.sio.disconnect(old_sid)

    async def on_disconnect(self, sid: str, *args: Any) -> None:
        if self.sio.manager.is_connected(sid, "/"):
            await self._reject(sid, "reserved_event", "'disconnect' is reserved.")
            return
        user_id = self.clients.pop(sid, None)
        if user_id is not None and self.player_sid.get(user_id) == sid:
            del self.player_sid[user_id]
            self.all_present.clear()
            if self.phase != "over":
                await self.broadcast(wire.PRESENCE, self.presence())

    async def on_input(self, sid: str, *args: Any) -> None:
        user_id = self.clients.get(sid)
        if user_id is None:
            if sid in self.clients:
                await self._reject(sid, "not_a_player", "Spectators cannot send input.")
            return
        seq = wire.parse_seq(args[0]) if len(args) == 1 else None
        try:
            action = self.game.parse_input(args[0]) if seq is not None else None
        except Exception as error:
            self.fail(error)
            return
        if action is None:
            await self._reject(sid, "invalid_input", 'Expected {"seq": int, "move": -1|0|1}.')
            return
        self.stats.inputs += 1
        if not self.limiters[user_id].allow(time.monotonic()):
            self.stats.inputs_dropped += 1
            return  # a flood: dropped silently, the game goes on
        seat = self.info.seat_of(user_id)
        self.inputs[seat.side].append((seq, action))

    async def on_ping(self, sid: str, *args: Any) -> dict[str, float]:
        return {"t": time.monotonic()}

    async def on_unknown(self, event: str, sid: str, *args: Any) -> None:
        await self._reject(sid, "unknown_event", f"Unknown event {str(event)[:40]!r}.")

    def _in_background(self, coro) -> None:
        task = asyncio.create_task(coro)
        self.background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task) -> None:
        self.background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("background task failed: %r", task.exception())

    async def _reject(self, sid: str, code: str, detail: str) -> None:
        logger.debug("rejected a message from %s: %s", sid, code)
        await self.sio.emit(wire.ERROR, wire.error(code, detail), to=sid)

    # --- the match -----------------------------------------------------------------

    def request_shutdown(self, reason: str = "shutdown") -> None:
        """End this match soon, as cancelled with `reason` (the per-match stop path:
        SIGTERM of a one-match process, a control message in a shared one)."""
        self.shutdown_reason = reason
        self.shutdown.set()

    def fail(self, error: BaseException) -> None:
        """The game raised: end this match as failed (its neighbours play on)."""
        if self.crash is None:
            self.crash = error
        self.shutdown.set()

    async def run(self) -> Outcome:
        """Serve the match from the first connection to the recorded result."""
        if self.heartbeat is not None:
            self.heartbeat.add(self.info.id, self.spectator_count)
        try:
            try:
                self.outcome = await self._run()
            except Exception as error:  # the game's, or a bug of ours: this match alone ends
                self.outcome = await self._fail(self.crash or error)
        finally:
            if self.heartbeat is not None:
                self.heartbeat.discard(self.info.id)
        await self._close()
        return self.outcome

    async def _run(self) -> Outcome:
        if not await self._wait_for_players(self.settings.connect_timeout):
            if self.shutdown.is_set():
                return await self._stopped()
            return await self._cancel(f"no_show: {', '.join(self.missing())}", public_reason="no_show")
        await self.store.mark_playing()
        while True:
            if self.shutdown.is_set():
                return await self._stopped()
            if await self._countdown():
                ended = await self._play()
                if ended is not None:
                    return ended
            if self.shutdown.is_set():
                continue
            if not await self._pause():
                return await self._forfeit()

    async def _stopped(self) -> Outcome:
        if self.crash is not None:
            raise self.crash
        return await self._cancel(self.shutdown_reason)

    async def _wait_for_players(self, timeout: float) -> bool:
        """True once every player is connected; False on timeout or shutdown."""
        waiters = {asyncio.create_task(self.all_present.wait()), asyncio.create_task(self.shutdown.wait())}
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waiters:
                task.cancel()
        return self.all_present.is_set() and not self.shutdown.is_set()

    async def _countdown(self) -> bool:
        """Count down before (re)starting play; False if a player left meanwhile."""
        self.phase = "countdown"
        seconds = self.settings.countdown
        await self.broadcast(wire.COUNTDOWN, {"seconds": seconds})
        await self.broadcast_state()
        deadline = asyncio.get_running_loop().time() + seconds
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            await asyncio.sleep(min(left, 0.05))
            if self.missing() or self.shutdown.is_set():
                return False
        return True

    async def _play(self) -> Outcome | None:
        """Play on the process's ticker; an Outcome when the match ends, None when it pauses."""
        self.phase = "playing"
        for queue in self.inputs.values():
            queue.clear()  # intents sent during a pause or countdown are stale
        self._next_snapshot = self.game.tick
        self._result = None
        self.played = True
        if self.recorder is not None:
            self.recorder.resumed(self.game.tick)
        before = dataclasses.replace(self.ticker.stats)
        membership = self.ticker.join(self)
        await membership.done
        # The process's late batches and dropped steps while this match played.
        after = self.ticker.stats
        self.loop_stats.steps += after.steps - before.steps
        self.loop_stats.late_batches += after.late_batches - before.late_batches
        self.loop_stats.dropped_steps += after.dropped_steps - before.dropped_steps
        if membership.crash is not None:
            raise membership.crash
        if self.crash is not None:
            raise self.crash
        if self._result is None:
            return None
        reason, winner_side = self._result
        if winner_side is None:  # a tie at the time limit: nobody won
            return await self._cancel(reason)
        return await self._finish(winner_side, reason)

    def step(self, dt: float) -> bool:
        """One step (called by the ticker); False once play stops."""
        game = self.game
        for side, queue in self.inputs.items():
            if queue:
                seq, action = queue.popleft()
                if self.recorder is not None:
                    self.recorder.input(game.tick, side, seq, action)
                game.apply_input(side, action)
                self.acks[side] = seq
        game.step(dt)
        self.play_time += dt
        score = game.score()
        if score != self._score:
            scorer = next((side for side in game.sides if score.get(side, 0) > self._score.get(side, 0)), None)
            self._score = dict(score)
            if self.recorder is not None:
                self.recorder.point(game.tick, scorer, score)
            self.outbox.append((wire.SCORE, {"side": scorer, "score": dict(score)}))
        winner = game.winner()
        if winner is not None:
            self._result = ("points", winner)
            return False
        if self.play_time >= self.settings.max_duration:
            self._result = ("time_limit", _leader(score))
            return False
        return not (self.missing() or self.shutdown.is_set())

    async def flush(self) -> None:
        """What this wake-up's steps produced: events, then a snapshot when due."""
        outbox, self.outbox = self.outbox, []
        for event, payload in outbox:
            await self.broadcast(event, payload)
            if event == wire.SCORE:
                self._in_background(self.store.publish_score(payload["score"]))
        if self.game.tick >= self._next_snapshot:
            self._next_snapshot = self.game.tick + self.snapshot_every
            await self.broadcast_state()

    async def _pause(self) -> bool:
        """Wait for the missing players; False if the grace ran out."""
        self.phase = "paused"
        grace = self.settings.reconnect_grace
        if self.recorder is not None:
            self.recorder.paused(self.game.tick, self.missing())
        await self.broadcast(wire.PAUSED, {"missing": self.missing(), "grace": grace})
        return await self._wait_for_players(grace) or self.shutdown.is_set()

    async def _forfeit(self) -> Outcome:
        present = {self.info.seat_of(uid).side for uid in self.player_sid}
        if len(present) != 1:
            return await self._cancel("abandoned")
        return await self._finish(present.pop(), "forfeit")

    async def _finish(self, winner_side: str, reason: str) -> Outcome:
        self.phase = "over"
        score = dict(self.game.score())
        final = self.recorded_state()  # the last snapshot is in the replay written with the result
        replay = self._replay("finished", reason, winner_side, score)
        if not await self.store.finish(score=score, winner_side=winner_side, reason=reason, replay=replay):
            # Failed or cancelled meanwhile (e.g. this host was partitioned and
            # failed over): the result is not applied, and the clients are told why.
            why = await self._why_not_live()
            logger.warning("result (%s) refused: the match is no longer live here (%s)", reason, why)
            await self.broadcast(wire.GAME_OVER, wire.game_over(None, score, why))
            return Outcome("refused", why, None, score)
        winner = next(s.username for s in self.info.seats if s.side == winner_side)
        await self.broadcast_state(final)
        await self.broadcast(wire.GAME_OVER, wire.game_over(winner, score, reason))
        return Outcome("finished", reason, winner, score)

    async def _cancel(self, reason: str, public_reason: str | None = None) -> Outcome:
        self.phase = "over"
        score = dict(self.game.score())
        replay = self._replay("cancelled", reason, None, score)
        if not await self.store.cancel(reason=reason, score=score if any(score.values()) else None, replay=replay):
            logger.warning("cancel (%s) not applied: the match had already ended or moved", reason)
        await self.broadcast(wire.GAME_OVER, wire.game_over(None, score, public_reason or reason))
        return Outcome("cancelled", reason, None, score)

    def _replay(self, status: str, reason: str, winner_side: str | None, score: dict[str, int]) -> Recorder | None:
        """The recording to write with the result: only for a match that was played
        (a no-show has nothing to replay)."""
        if self.recorder is None or not self.played:
            return None
        self.recorder.ended(self.game.tick, status=status, reason=reason, winner=winner_side, score=score)
        return self.recorder

    async def _fail(self, error: BaseException) -> Outcome:
        """End the match as failed: the game (or the room) broke, not the players."""
        self.phase = "over"
        reason = f"game_error: {error.__class__.__name__}: {error}"[:255]
        logger.error("match %s failed: %s", self.info.id, reason, exc_info=error)
        try:
            score = dict(self.game.score())
        except Exception:
            score = {}
        try:
            await self.store.fail(reason=reason)
        except Exception:  # the supervisor fails it when the heartbeat stops
            logger.error("could not record the failure of match %s", self.info.id, exc_info=True)
        try:
            await self.broadcast(wire.GAME_OVER, wire.game_over(None, score, "error"))
        except Exception:
            logger.debug("game_over of failed match %s not sent", self.info.id, exc_info=True)
        return Outcome("failed", reason, None, score)

    async def _close(self) -> None:
        """Disconnect every client once its last events (`game_over`) have left.

        Socket.IO's disconnect only queues a packet; Engine.IO's closes the
        transport once the client has collected its queue. Without that wait a
        long-polling client between two requests would lose `game_over` when the
        site closes. Bounded: a client that never asks again is cut off."""
        await asyncio.sleep(FLUSH_DELAY)
        for sid in list(self.clients):
            try:
                await self.sio.disconnect(sid)
            except Exception:  # a socket already gone is not our problem any more
                logger.debug("disconnect of %s failed", sid, exc_info=True)
        transports = list(self.sio.eio.sockets)
        results = await asyncio.gather(
            *(asyncio.wait_for(self.sio.eio.disconnect(eio_sid), CLOSE_TIMEOUT) for eio_sid in transports),
            return_exceptions=True,
        )
        late = sum(isinstance(result, asyncio.TimeoutError) for result in results)
        if late:
            logger.info("%d client(s) did not collect their last events within %g s", late, CLOSE_TIMEOUT)

    async def _why_not_live(self) -> str:
        try:
            return await self.store.heartbeat() or "match_over"
        except Exception:
            return "match_over"


def _refusal(code: str, detail: str) -> socketio.exceptions.ConnectionRefusedError:
    """A refused connection: the client's connect_error gets {message, data: {code, detail}}."""
    return socketio.exceptions.ConnectionRefusedError(detail, wire.error(code, detail))


def _leader(score: dict[str, int]) -> str | None:
    """The side with the most points, or None on a tie at the top."""
    if not score:
        return None
    best = max(score.values())
    leaders = [side for side, points in score.items() if points == best]
    return leaders[0] if len(leaders) == 1 else None

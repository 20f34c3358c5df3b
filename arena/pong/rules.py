"""The Pong rules: ``new_game`` and ``step``, pure and deterministic.

``step`` is the hot path (60 Hz x hundreds of matches per process), so it is
written as straight-line code over local floats: no ``dataclasses.replace``, no
loops over sides, dicts rebuilt only when a value actually changes.

Conventions that are easy to get wrong:

* Paddles move at constant speed for the whole step (clamped to the field), and
  the ball is tested against the paddle's position *at the moment the ball
  reaches the face*, not at the start or end of the step.
* Collisions are swept: each iteration finds the earliest wall or paddle-face
  contact within the remaining time, advances exactly to it and reflects, so a
  fast ball can never tunnel through a paddle whatever the dt.
* Only the paddle *face* collides. A ball that crosses the face plane outside
  the paddle's span (extended by the radius) has missed, and is not tested
  against that paddle again until it comes back.
* The serve step only launches the ball from the centre; the leftover time of
  that step is dropped, the ball starts moving on the next step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from .config import SIDES, Config
from .events import Event, GameOver, PaddleHit, PointScored, WallBounce
from .rng import next_float, next_u64, seed_rng
from .state import Ball, State

#: The version of these rules, recorded with every replay. Bump it with any change
#: after which the same config, seed and inputs could give another match (a
#: different bounce, serve, speed, rounding, or snapshot): a replay recorded under
#: another version is then refused instead of being played back wrongly.
RULES_VERSION = 1

#: Serves leave at a uniformly random angle in [-SERVE_ANGLE_DEG, +SERVE_ANGLE_DEG].
SERVE_ANGLE_DEG = 30.0
#: Longest step simulated; a larger dt (a server stall) is cut to this so the
#: ball slows down instead of jumping across the field.
MAX_DT = 0.25

_SERVE_ANGLE_RAD = math.radians(SERVE_ANGLE_DEG)
# Float slack (px) when deciding whether the ball is still in front of a face:
# a ball stopped a rounding error short of / past a face must still be caught.
_FACE_EPS = 1e-6
# serve_in counts down by repeated float subtraction (1.0 - 60 * (1/60) != 0).
_SERVE_EPS = 1e-9
# Safety bound on collisions resolved in one step (a few at most in practice).
_MAX_COLLISIONS = 16

# Events are immutable, so the argument-less / per-side ones are shared.
_WALL_BOUNCE = WallBounce()
_HIT_LEFT = PaddleHit("left")
_HIT_RIGHT = PaddleHit("right")

_cos = math.cos
_sin = math.sin
_hypot = math.hypot


def new_game(config: Config, seed: int) -> State:
    """A fresh match: paddles and ball centred, first serve after ``serve_delay``.

    The first serve's direction comes from the seed, so two matches with the same
    seed are identical and different seeds do not always favour the same side.
    """
    rng, bits = next_u64(seed_rng(seed))
    cy = config.height * 0.5
    return State(
        tick=0,
        ball=Ball(config.width * 0.5, cy, 0.0, 0.0),
        paddles={"left": cy, "right": cy},
        moves={"left": 0, "right": 0},
        score={"left": 0, "right": 0},
        serve_in=float(config.serve_delay),
        serve_to=SIDES[bits >> 63],
        rng=rng,
        winner=None,
    )


def _intent(value: object, previous: int) -> int:
    """Sign of ``value`` as -1/0/1; anything not comparable to 0 keeps ``previous``.

    The server validates inputs, but a bad value must never crash a match.
    """
    try:
        if value > 0:  # type: ignore[operator]
            return 1
        if value < 0:  # type: ignore[operator]
            return -1
        return 0  # includes NaN
    except Exception:
        return previous


def step(state: State, inputs: Mapping[str, int], dt: float, config: Config) -> tuple[State, tuple[Event, ...]]:
    """Advance the match by ``dt`` seconds under the players' ``inputs``.

    ``inputs`` maps side -> new move intent; absent sides keep their previous
    intent, unknown keys are ignored, values are reduced to their sign. ``dt`` is
    clamped to [0, MAX_DT] (NaN counts as 0). Once ``state.winner`` is set the
    state is returned unchanged with no events.
    """
    if state.winner is not None:
        return state, ()
    if not dt > 0.0:  # negative, zero or NaN
        dt = 0.0
    elif dt > MAX_DT:
        dt = MAX_DT

    # --- intents -------------------------------------------------------------
    moves = state.moves
    ml = moves["left"]
    mr = moves["right"]
    if inputs:
        nl = _intent(inputs["left"], ml) if "left" in inputs else ml
        nr = _intent(inputs["right"], mr) if "right" in inputs else mr
        if nl != ml or nr != mr:
            ml, mr = nl, nr
            moves = {"left": ml, "right": mr}

    # --- paddles (also during the serve delay) --------------------------------
    paddles = state.paddles
    pl0 = paddles["left"]
    pr0 = paddles["right"]
    pspeed = config.paddle_speed
    half = config.paddle_height * 0.5
    lo = half
    hi = config.height - half
    if ml or mr:
        pl = pl0 + ml * pspeed * dt
        pl = lo if pl < lo else hi if pl > hi else pl
        pr = pr0 + mr * pspeed * dt
        pr = lo if pr < lo else hi if pr > hi else pr
        if pl != pl0 or pr != pr0:
            paddles = {"left": pl, "right": pr}

    tick = state.tick + 1
    ball = state.ball
    serve_in = state.serve_in

    # --- waiting for the serve --------------------------------------------------
    # vx is never 0 while the ball is in play (bounce angles stay below 90 deg),
    # so a resting ball with serve_in <= 0 (serve_delay == 0) is served at once.
    if serve_in > 0.0 or ball.vx == 0.0:
        serve_in -= dt
        if serve_in > _SERVE_EPS:
            return State(tick, ball, paddles, moves, state.score, serve_in, state.serve_to, state.rng, None), ()
        rng, u = next_float(state.rng)
        angle = (2.0 * u - 1.0) * _SERVE_ANGLE_RAD
        speed = config.ball_speed
        vx = speed * _cos(angle)
        if state.serve_to == "left":
            vx = -vx
        ball = Ball(config.width * 0.5, config.height * 0.5, vx, speed * _sin(angle))
        return State(tick, ball, paddles, moves, state.score, 0.0, state.serve_to, rng, None), ()

    # --- ball in play: swept collisions ---------------------------------------
    x = ball.x
    y = ball.y
    vx = ball.vx
    vy = ball.vy
    r = config.ball_radius
    top = r
    bottom = config.height - r
    face_l = config.paddle_inset + config.paddle_width
    face_r = config.width - face_l
    reach = half + r  # max |ball y - paddle y| that still counts as a hit
    missed_l = missed_r = False
    events: list[Event] = []
    t_rem = dt

    for _ in range(_MAX_COLLISIONS):
        # Earliest contact within t_rem: 0 none, 1 top, 2 bottom, 3 left face, 4 right face.
        t_hit = t_rem
        kind = 0
        if vy < 0.0:
            t = (y - top) / -vy
            if t < t_hit:
                t_hit = t if t > 0.0 else 0.0
                kind = 1
        elif vy > 0.0:
            t = (bottom - y) / vy
            if t < t_hit:
                t_hit = t if t > 0.0 else 0.0
                kind = 2
        if vx < 0.0:
            if not missed_l:
                gap = x - r - face_l
                if gap >= -_FACE_EPS:
                    t = gap / -vx if gap > 0.0 else 0.0
                    if t <= t_hit:  # ties go to the paddle; the wall follows at t=0
                        t_hit = t
                        kind = 3
        elif not missed_r:
            gap = face_r - x - r
            if gap >= -_FACE_EPS:
                t = gap / vx if gap > 0.0 else 0.0
                if t <= t_hit:
                    t_hit = t
                    kind = 4

        x += vx * t_hit
        y += vy * t_hit
        t_rem -= t_hit
        if kind == 0:
            break
        if kind == 1:
            y = top
            vy = -vy
            events.append(_WALL_BOUNCE)
            continue
        if kind == 2:
            y = bottom
            vy = -vy
            events.append(_WALL_BOUNCE)
            continue

        # Paddle face reached: where was the paddle at this instant?
        elapsed = dt - t_rem
        if kind == 3:
            py = pl0 + ml * pspeed * elapsed
        else:
            py = pr0 + mr * pspeed * elapsed
        py = lo if py < lo else hi if py > hi else py
        offset = y - py
        if offset < -reach or offset > reach:
            if kind == 3:
                missed_l = True
            else:
                missed_r = True
            continue
        speed = _hypot(vx, vy) * config.ball_speedup
        if speed > config.ball_max_speed:
            speed = config.ball_max_speed
        angle = offset / reach * math.radians(config.max_bounce_angle_deg)
        vy = speed * _sin(angle)
        if kind == 3:
            x = face_l + r
            vx = speed * _cos(angle)
            events.append(_HIT_LEFT)
        else:
            x = face_r - r
            vx = -speed * _cos(angle)
            events.append(_HIT_RIGHT)
    # (If _MAX_COLLISIONS is ever exhausted the rest of the step is dropped.)

    # --- scoring ----------------------------------------------------------------
    if x < 0.0:
        scorer, conceder = "right", "left"
    elif x > config.width:
        scorer, conceder = "left", "right"
    else:
        return (
            State(tick, Ball(x, y, vx, vy), paddles, moves, state.score, 0.0, state.serve_to, state.rng, None),
            tuple(events),
        )

    score = dict(state.score)
    score[scorer] += 1
    events.append(PointScored(scorer, dict(score)))
    winner = None
    if score[scorer] >= config.points_to_win:
        winner = scorer
        events.append(GameOver(scorer, dict(score)))
    ball = Ball(config.width * 0.5, config.height * 0.5, 0.0, 0.0)
    return (
        State(tick, ball, paddles, moves, score, float(config.serve_delay), conceder, state.rng, winner),
        tuple(events),
    )

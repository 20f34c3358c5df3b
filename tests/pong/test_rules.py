"""Tests for the pure Pong core (arena.pong). No Django, no I/O, fast."""

from __future__ import annotations

import math
import timeit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arena.pong import (
    MAX_DT,
    SERVE_ANGLE_DEG,
    SIDES,
    Ball,
    Config,
    GameOver,
    PaddleHit,
    PointScored,
    State,
    WallBounce,
    new_game,
    step,
)

CFG = Config()
DT = 1 / 60
FACE_L = CFG.paddle_inset + CFG.paddle_width
FACE_R = CFG.width - FACE_L
R = CFG.ball_radius


def in_play(
    x: float,
    y: float,
    vx: float,
    vy: float,
    *,
    left: float | None = None,
    right: float | None = None,
    moves: dict[str, int] | None = None,
    score: dict[str, int] | None = None,
    cfg: Config = CFG,
) -> State:
    """A state with the ball already served and moving."""
    mid = cfg.height / 2
    return State(
        tick=0,
        ball=Ball(x, y, vx, vy),
        paddles={"left": mid if left is None else left, "right": mid if right is None else right},
        moves=moves or {"left": 0, "right": 0},
        score=score or {"left": 0, "right": 0},
        serve_in=0.0,
        serve_to="left",
        rng=12345,
        winner=None,
    )


def run(state: State, n: int, inputs=None, dt: float = DT, cfg: Config = CFG):
    """Step n times with the same inputs; return the final state and all events."""
    events = []
    for _ in range(n):
        state, ev = step(state, inputs or {}, dt, cfg)
        events.extend(ev)
    return state, events


def served(seed: int = 1, cfg: Config = CFG) -> State:
    state = new_game(cfg, seed)
    while state.ball.vx == 0.0:
        state, _ = step(state, {}, DT, cfg)
    return state


# --- setup --------------------------------------------------------------------


def test_new_game_is_centred_and_waits_for_serve():
    s = new_game(CFG, 42)
    assert s.tick == 0
    assert s.ball == Ball(500.0, 300.0, 0.0, 0.0)
    assert s.paddles == {"left": 300.0, "right": 300.0}
    assert s.moves == {"left": 0, "right": 0}
    assert s.score == {"left": 0, "right": 0}
    assert s.serve_in == CFG.serve_delay
    assert s.serve_to in SIDES
    assert s.winner is None
    # The first serve direction depends on the seed, both sides occur.
    assert {new_game(CFG, seed).serve_to for seed in range(32)} == set(SIDES)


def test_field_is_json_ready_geometry():
    f = CFG.field()
    assert f == {
        "width": 1000.0,
        "height": 600.0,
        "paddle_width": 12.0,
        "paddle_height": 100.0,
        "paddle_inset": 30.0,
        "ball_radius": 8.0,
        "paddle_speed": 500.0,
        "ball_speed": 350.0,
    }


@pytest.mark.parametrize(
    "kwargs",
    [
        {"width": 0},
        {"height": -1},
        {"paddle_height": 700},
        {"ball_radius": float("nan")},
        {"max_bounce_angle_deg": 90},
        {"points_to_win": 0},
        {"ball_speedup": 0.5},
        {"ball_max_speed": 100},
    ],
)
def test_config_rejects_nonsense(kwargs):
    with pytest.raises(ValueError):
        Config(**kwargs)


# --- paddles and inputs -----------------------------------------------------------


def test_paddle_moves_by_speed_times_dt_in_the_right_direction():
    s = new_game(CFG, 1)
    s, _ = step(s, {"left": -1, "right": 1}, DT, CFG)
    assert s.paddles["left"] == pytest.approx(300.0 - CFG.paddle_speed * DT)
    assert s.paddles["right"] == pytest.approx(300.0 + CFG.paddle_speed * DT)
    assert s.tick == 1


def test_paddles_clamp_inside_the_field():
    s = new_game(CFG, 1)
    s, _ = run(s, 120, {"left": -1, "right": 1})  # 2 s at 500 px/s: far more than needed
    half = CFG.paddle_height / 2
    assert s.paddles == {"left": half, "right": CFG.height - half}


def test_input_persists_until_changed():
    s = new_game(CFG, 1)
    s, _ = step(s, {"left": 1}, DT, CFG)
    s, _ = run(s, 9)  # no new inputs: keeps moving
    assert s.moves == {"left": 1, "right": 0}
    assert s.paddles["left"] == pytest.approx(300.0 + 10 * CFG.paddle_speed * DT)
    assert s.paddles["right"] == 300.0
    s, _ = step(s, {"left": 0}, DT, CFG)
    y = s.paddles["left"]
    s, _ = run(s, 5)
    assert s.paddles["left"] == y


def test_bad_inputs_are_clamped_or_ignored():
    s = new_game(CFG, 1)
    s, _ = step(s, {"left": 7, "right": -3, "middle": 1, 5: 5}, DT, CFG)
    assert s.moves == {"left": 1, "right": -1}
    s, _ = step(s, {"left": None, "right": "down"}, DT, CFG)  # not comparable: keep previous
    assert s.moves == {"left": 1, "right": -1}
    s, _ = step(s, {"left": float("nan"), "right": True}, DT, CFG)
    assert s.moves == {"left": 0, "right": 1}


def test_bad_dt_never_breaks_the_state():
    s = served()
    for dt in (float("nan"), -1.0, 0.0):
        s2, ev = step(s, {"left": 1}, dt, CFG)
        assert s2.ball == s.ball and s2.paddles == s.paddles and ev == ()
        assert s2.tick == s.tick + 1
    s2, _ = step(s, {}, float("inf"), CFG)  # clamped to MAX_DT
    s3, _ = step(s, {}, MAX_DT, CFG)
    assert s2 == s3


def test_paddles_move_during_serve_delay():
    s = new_game(CFG, 1)
    s, _ = step(s, {"right": -1}, DT, CFG)
    assert s.serve_in > 0
    assert s.paddles["right"] < 300.0
    assert s.ball == Ball(500.0, 300.0, 0.0, 0.0)


# --- serve ------------------------------------------------------------------------


def test_serve_after_delay_toward_serve_to_with_bounded_angle():
    for seed in range(20):
        s = new_game(CFG, seed)
        rng0 = s.rng
        s, _ = run(s, 59)
        assert s.ball.vx == 0.0 and s.ball.vy == 0.0 and s.serve_in > 0
        s, _ = step(s, {}, DT, CFG)  # 60 * (1/60) == serve_delay, despite rounding
        assert s.serve_in == 0.0
        assert s.ball.x == 500.0 and s.ball.y == 300.0  # leftover time is dropped
        assert math.hypot(s.ball.vx, s.ball.vy) == pytest.approx(CFG.ball_speed)
        assert (s.ball.vx < 0) == (s.serve_to == "left")
        angle = math.degrees(math.atan2(abs(s.ball.vy), abs(s.ball.vx)))
        assert angle <= SERVE_ANGLE_DEG + 1e-9
        assert s.rng != rng0
        s2, _ = step(s, {}, DT, CFG)
        assert s2.ball.x == pytest.approx(500.0 + s.ball.vx * DT)


def test_zero_serve_delay_serves_at_once():
    cfg = Config(serve_delay=0.0)
    s, _ = step(new_game(cfg, 3), {}, DT, cfg)
    assert s.ball.vx != 0.0


# --- walls ------------------------------------------------------------------------


def test_wall_bounce_top_and_bottom():
    s = in_play(500.0, R + 2.0, 100.0, -300.0)
    s, ev = step(s, {}, DT, CFG)  # travels 5 px up: 2 px to the wall, 3 px back
    assert ev == (WallBounce(),)
    assert s.ball.vy == 300.0
    assert s.ball.y == pytest.approx(R + 3.0)
    s = in_play(500.0, CFG.height - R - 1.0, -100.0, 600.0)
    s, ev = step(s, {}, DT, CFG)
    assert ev == (WallBounce(),)
    assert s.ball.vy == -600.0
    assert s.ball.y == pytest.approx(CFG.height - R - 9.0)


# --- paddles hits -------------------------------------------------------------------


def test_paddle_hit_reverses_and_speeds_up():
    s = in_play(FACE_L + R + 3.0, 300.0, -400.0, 0.0)
    s, ev = step(s, {}, DT, CFG)
    assert ev == (PaddleHit("left"),)
    assert s.ball.vx == pytest.approx(400.0 * CFG.ball_speedup)
    assert s.ball.vy == pytest.approx(0.0)
    assert s.ball.x > FACE_L + R

    s = in_play(FACE_R - R - 3.0, 300.0, 400.0, 0.0)
    s, ev = step(s, {}, DT, CFG)
    assert ev == (PaddleHit("right"),)
    assert s.ball.vx == pytest.approx(-400.0 * CFG.ball_speedup)
    assert s.ball.x < FACE_R - R


def test_paddle_hit_speed_is_capped():
    s = in_play(FACE_L + R + 3.0, 300.0, -CFG.ball_max_speed * 0.99, 0.0)
    s, _ = step(s, {}, DT, CFG)
    assert math.hypot(s.ball.vx, s.ball.vy) == pytest.approx(CFG.ball_max_speed)


@pytest.mark.parametrize("side", SIDES)
def test_bounce_angle_depends_on_contact_offset(side):
    reach = CFG.paddle_height / 2 + R

    def hit(offset: float) -> Ball:
        if side == "left":
            s = in_play(FACE_L + R + 2.0, 300.0 + offset, -300.0, 0.0)
        else:
            s = in_play(FACE_R - R - 2.0, 300.0 + offset, 300.0, 0.0)
        s, ev = step(s, {}, DT, CFG)
        assert ev == (PaddleHit(side),)
        return s.ball

    near_top = hit(-45.0)
    assert near_top.vy < 0  # goes upward
    angle = math.degrees(math.atan2(-near_top.vy, abs(near_top.vx)))
    assert angle == pytest.approx(45.0 / reach * CFG.max_bounce_angle_deg)
    assert hit(45.0).vy > 0
    assert hit(0.0).vy == pytest.approx(0.0)
    assert abs(hit(-20.0).vy) < abs(near_top.vy)
    # The edge of the window (paddle half height + radius) still hits, at the max angle.
    edge = hit(reach - 1e-9)
    assert math.degrees(math.atan2(edge.vy, abs(edge.vx))) == pytest.approx(CFG.max_bounce_angle_deg)


@pytest.mark.parametrize("dt", [1 / 20, 1 / 60])
@pytest.mark.parametrize("side", SIDES)
def test_no_tunnelling_at_max_speed(dt, side):
    v = CFG.ball_max_speed
    for k in range(40):  # vary the phase so the face is crossed at every point of a step
        start = 300.0 + k * 2.37
        if side == "left":
            s = in_play(FACE_L + R + start, 300.0, -v, 0.0)
        else:
            s = in_play(FACE_R - R - start, 300.0, v, 0.0)
        hits = 0
        for _ in range(int(1.0 / dt)):
            s, ev = step(s, {}, dt, CFG)
            hits += ev.count(PaddleHit(side))
            assert not any(isinstance(e, PointScored) for e in ev)
            # never inside or behind the paddle
            if side == "left":
                assert s.ball.x - R >= FACE_L - 1e-6
            else:
                assert s.ball.x + R <= FACE_R + 1e-6
            if hits:
                break
        assert hits == 1
        assert (s.ball.vx > 0) == (side == "left")
        assert abs(s.ball.vx) == pytest.approx(v)  # capped at max


def test_paddle_position_at_the_crossing_time_counts():
    v = -CFG.ball_max_speed
    # Out of reach at the start of the step, moving into the ball's path before the
    # face is crossed (at 40/900 s): a hit.
    s = in_play(FACE_L + R + 40.0, 375.0, v, 0.0, left=300.0, moves={"left": 1, "right": 0})
    _, ev = step(s, {}, 1 / 20, CFG)
    assert ev == (PaddleHit("left"),)
    # In reach at the crossing (at 9/900 s), out of reach by the end of the step: a hit.
    s = in_play(FACE_L + R + 9.0, 348.0, v, 0.0, left=300.0, moves={"left": -1, "right": 0})
    _, ev = step(s, {}, 1 / 20, CFG)
    assert ev == (PaddleHit("left"),)
    # In reach at the start, moved away by the crossing: a miss, the ball goes on behind the face.
    s = in_play(FACE_L + R + 30.0, 355.0, v, 0.0, left=300.0, moves={"left": -1, "right": 0})
    s2, ev = step(s, {}, 1 / 20, CFG)
    assert ev == ()
    assert s2.ball.x - R < FACE_L


def test_ball_behind_the_face_does_not_bounce_back():
    s = in_play(FACE_L + R - 5.0, 300.0, -300.0, 0.0)  # already past the face plane
    s, ev = step(s, {}, DT, CFG)
    assert ev == ()
    assert s.ball.vx < 0


# --- scoring -------------------------------------------------------------------------


def test_missing_the_paddle_scores_for_the_other_side_and_resets():
    s = in_play(100.0, 100.0, -600.0, 0.0)  # left paddle at 300: well out of reach
    events = []
    for _ in range(30):
        s, ev = step(s, {}, DT, CFG)
        events.extend(ev)
        if ev:
            break
    assert events == [PointScored("right", {"left": 0, "right": 1})]
    assert s.score == {"left": 0, "right": 1}
    assert s.ball == Ball(500.0, 300.0, 0.0, 0.0)
    assert s.serve_in == CFG.serve_delay
    assert s.serve_to == "left"  # toward the side that conceded
    assert s.winner is None
    s, _ = run(s, 60)
    assert s.ball.vx < 0  # served toward the left

    s = in_play(900.0, 500.0, 600.0, 0.0)
    s, ev = run(s, 30)
    assert ev[0] == PointScored("left", {"left": 1, "right": 0})
    assert s.serve_to == "right"


def test_reaching_points_to_win_ends_the_game():
    cfg = Config(points_to_win=3)
    s = in_play(100.0, 100.0, -600.0, 0.0, score={"left": 1, "right": 2}, cfg=cfg)
    s, ev = run(s, 30, cfg=cfg)
    assert ev == [
        PointScored("right", {"left": 1, "right": 3}),
        GameOver("right", {"left": 1, "right": 3}),
    ]
    assert s.winner == "right"
    for inputs in ({}, {"left": 1, "right": -1}):
        s2, ev2 = step(s, inputs, DT, cfg)
        assert s2 is s and ev2 == ()


def test_event_scores_are_private_copies():
    s = in_play(100.0, 100.0, -600.0, 0.0)
    s, ev = run(s, 30)
    ev[0].score["right"] = 99
    assert s.score == {"left": 0, "right": 1}


# --- determinism ------------------------------------------------------------------------


def _script(n: int):
    """A fixed, irregular input script (no randomness involved)."""
    out = []
    for i in range(n):
        inputs = {}
        if i % 7 == 0:
            inputs["left"] = (i // 7) % 3 - 1
        if i % 11 == 3:
            inputs["right"] = 1 - (i // 11) % 3
        out.append(inputs)
    return out


def _trace(seed: int, script, dts):
    s = new_game(CFG, seed)
    trace = []
    for inputs, dt in zip(script, dts):
        s, ev = step(s, inputs, dt, CFG)
        b = s.ball
        trace.append((s.tick, b.x.hex(), b.y.hex(), b.vx.hex(), b.vy.hex(), repr(s), ev))
    return trace


def test_same_seed_inputs_and_dts_give_identical_states():
    script = _script(2000)
    dts = [(1 / 60, 1 / 30, 1 / 20, 0.013)[i % 4] for i in range(2000)]
    a = _trace(7, script, dts)
    b = _trace(7, script, dts)
    assert a == b
    c = _trace(8, script, dts)
    assert a != c


# --- property test ----------------------------------------------------------------------

_ABSENT = object()
_FOLLOW = "follow"  # resolved to a ball-following move at run time: more hits, faster balls
# Values a side may send; _ABSENT means "no input this step". Includes garbage.
_VALUES = [_ABSENT, -1, 0, 1, _FOLLOW, _FOLLOW, _FOLLOW, 2, -9, 0.5, float("nan"), None, "up", _ABSENT, 0, 1]
_DTS = [1 / 60, 1 / 60, 1 / 30, 1 / 20]


def _decode(data: bytes):
    """Two bytes per step -> (left value, right value, dt).

    Drawing raw bytes is much faster for Hypothesis than a list of tuples, and
    still shrinks toward short, zero-heavy scripts.
    """
    for i in range(0, len(data) - 1, 2):
        a, b = data[i], data[i + 1]
        yield _VALUES[a & 15], _VALUES[b & 15], _DTS[(a >> 4) & 3]


def _resolve(value, side: str, s: State):
    if value is _FOLLOW:
        d = s.ball.y - s.paddles[side]
        return 1 if d > 5 else -1 if d < -5 else 0
    return value


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(min_value=-(2**70), max_value=2**70),
    data=st.binary(min_size=200, max_size=800),
    points=st.integers(min_value=1, max_value=3),
    serve_speed=st.sampled_from([350.0, 700.0, 900.0]),  # 900 == ball_max_speed from the start
)
def test_random_play_keeps_invariants(seed, data, points, serve_speed):
    cfg = Config(points_to_win=points, serve_delay=0.1, ball_speed=serve_speed)
    r = cfg.ball_radius
    face_l = cfg.paddle_inset + cfg.paddle_width
    face_r = cfg.width - face_l
    half = cfg.paddle_height / 2
    s = new_game(cfg, seed)
    for left, right, dt in _decode(data):
        inputs = {}
        for side, value in (("left", left), ("right", right)):
            if value is not _ABSENT:
                inputs[side] = _resolve(value, side, s)
        prev = s
        s, events = step(s, inputs, dt, cfg)
        b = s.ball
        if prev.winner is not None:
            assert s is prev and events == ()
            continue
        assert s.tick == prev.tick + 1
        assert all(math.isfinite(v) for v in (b.x, b.y, b.vx, b.vy, s.serve_in))
        slack = r + cfg.ball_max_speed * dt
        assert -slack <= b.x <= cfg.width + slack
        assert r - 1e-9 <= b.y <= cfg.height - r + 1e-9
        assert math.hypot(b.vx, b.vy) <= cfg.ball_max_speed * (1 + 1e-12)
        for side in SIDES:
            assert half - 1e-9 <= s.paddles[side] <= cfg.height - half + 1e-9
            assert s.moves[side] in (-1, 0, 1)
            assert s.score[side] >= prev.score[side]
        assert sum(s.score.values()) - sum(prev.score.values()) <= 1
        if s.serve_in > 0:
            assert b == Ball(cfg.width / 2, cfg.height / 2, 0.0, 0.0)
        if PaddleHit("left") in events and not any(isinstance(e, PointScored) for e in events):
            assert b.x - r >= face_l - 1e-6 or b.vx > 0
        if PaddleHit("right") in events and not any(isinstance(e, PointScored) for e in events):
            assert b.x + r <= face_r + 1e-6 or b.vx < 0
        winners = [side for side in SIDES if s.score[side] >= cfg.points_to_win]
        assert len(winners) <= 1
        assert s.winner == (winners[0] if winners else None)
        assert (GameOver in map(type, events)) == (prev.winner is None and s.winner is not None)


# --- a whole match ------------------------------------------------------------------------


def _ai(s: State, side: str, cfg: Config) -> int:
    """Track the ball only when it approaches within 350 px, else go back to the centre."""
    b = s.ball
    coming = b.vx < 0 if side == "left" else b.vx > 0
    dist = b.x if side == "left" else cfg.width - b.x
    target = b.y if coming and dist < 350 else cfg.height / 2
    p = s.paddles[side]
    return 1 if target > p + 10 else -1 if target < p - 10 else 0


def _play_match(seed: int, cfg: Config, max_steps: int):
    s = new_game(cfg, seed)
    hits = 0
    for n in range(1, max_steps + 1):
        s, ev = step(s, {side: _ai(s, side, cfg) for side in SIDES}, DT, cfg)
        hits += sum(isinstance(e, PaddleHit) for e in ev)
        if s.winner is not None:
            return s, n, hits
    return s, None, hits


def test_two_ball_following_ais_finish_a_match():
    cfg = Config(points_to_win=3)
    for seed in (0, 1):
        s, n, hits = _play_match(seed, cfg, max_steps=20_000)  # ~5.5 min of game time
        assert n is not None, "match did not finish"
        assert s.score[s.winner] == 3 and hits > 0
        again, n2, hits2 = _play_match(seed, cfg, max_steps=20_000)
        assert (again, n2, hits2) == (s, n, hits)


def test_step_is_cheap():
    # A loose guard against accidental slow paths (the target is a few microseconds).
    s = served()
    per_call = min(timeit.repeat(lambda: step(s, {"left": 1}, DT, CFG), number=2000, repeat=3)) / 2000
    assert per_call < 100e-6

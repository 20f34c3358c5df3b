"""Game parameters for Pong.

One immutable object carries every tunable number so that a match is fully
described by ``(Config, seed, inputs, dts)``; nothing else influences the
simulation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: The two sides of the field, in a fixed order (left first). Everything that
#: iterates over sides uses this order so results never depend on dict order.
SIDES: tuple[str, str] = ("left", "right")


@dataclass(frozen=True, slots=True)
class Config:
    """Field geometry and ball/paddle dynamics. Pixels, seconds, px/s."""

    width: float = 1000.0
    height: float = 600.0
    paddle_width: float = 12.0
    paddle_height: float = 100.0
    paddle_inset: float = 30.0  # gap between the side wall and the paddle's back
    paddle_speed: float = 500.0  # px/s
    ball_radius: float = 8.0
    ball_speed: float = 350.0  # serve speed, px/s
    ball_speedup: float = 1.06  # factor on each paddle hit
    ball_max_speed: float = 900.0
    max_bounce_angle_deg: float = 55.0
    serve_delay: float = 1.0  # seconds between a point and the next serve (and before the first)
    points_to_win: int = 5

    def __post_init__(self) -> None:
        # Fail at construction rather than deep inside step(): a bad config
        # would otherwise show up as NaNs or a ball stuck in a wall mid-match.
        numbers = {
            "width": self.width,
            "height": self.height,
            "paddle_width": self.paddle_width,
            "paddle_height": self.paddle_height,
            "paddle_inset": self.paddle_inset,
            "paddle_speed": self.paddle_speed,
            "ball_radius": self.ball_radius,
            "ball_speed": self.ball_speed,
            "ball_speedup": self.ball_speedup,
            "ball_max_speed": self.ball_max_speed,
            "max_bounce_angle_deg": self.max_bounce_angle_deg,
            "serve_delay": self.serve_delay,
        }
        for name, value in numbers.items():
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"Config.{name} must be a finite number, got {value!r}")
        for name in ("width", "height", "paddle_width", "paddle_height", "ball_radius", "ball_speed"):
            if numbers[name] <= 0:
                raise ValueError(f"Config.{name} must be > 0")
        if self.paddle_inset < 0 or self.paddle_speed < 0 or self.serve_delay < 0:
            raise ValueError("Config.paddle_inset, paddle_speed and serve_delay must be >= 0")
        if self.paddle_height > self.height:
            raise ValueError("Config.paddle_height must fit inside the field height")
        if 2 * self.ball_radius >= self.height:
            raise ValueError("Config.ball_radius is too large for the field height")
        if 2 * (self.paddle_inset + self.paddle_width + self.ball_radius) >= self.width:
            raise ValueError("paddles and ball do not fit inside the field width")
        if self.ball_speedup < 1 or self.ball_max_speed < self.ball_speed:
            raise ValueError("Config.ball_speedup must be >= 1 and ball_max_speed >= ball_speed")
        if not 0 <= self.max_bounce_angle_deg < 90:
            raise ValueError("Config.max_bounce_angle_deg must be in [0, 90)")
        if isinstance(self.points_to_win, bool) or not isinstance(self.points_to_win, int) or self.points_to_win < 1:
            raise ValueError("Config.points_to_win must be an int >= 1")

    def field(self) -> dict:
        """Geometry for clients (the ``field`` object of the protocol's ``welcome``)."""
        return {
            "width": self.width,
            "height": self.height,
            "paddle_width": self.paddle_width,
            "paddle_height": self.paddle_height,
            "paddle_inset": self.paddle_inset,
            "ball_radius": self.ball_radius,
            "paddle_speed": self.paddle_speed,
            "ball_speed": self.ball_speed,
        }

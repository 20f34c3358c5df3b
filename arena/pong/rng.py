"""A tiny deterministic PRNG (SplitMix64) whose whole state is one int.

``random.Random`` would work too, but its state is a 625-word tuple and it is
process-global by habit; keeping the state as a plain int inside ``State``
makes a match replayable bit for bit from its seed and trivially serialisable.
"""

from __future__ import annotations

MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


def seed_rng(seed: int) -> int:
    """Map any int (negative or huge too) to a valid 64-bit generator state."""
    return int(seed) & MASK64


def next_u64(state: int) -> tuple[int, int]:
    """Return ``(new_state, value)`` with ``value`` uniform in [0, 2**64)."""
    state = (state + _GOLDEN) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


def next_float(state: int) -> tuple[int, float]:
    """Return ``(new_state, value)`` with ``value`` uniform in [0, 1) (53 bits)."""
    state, z = next_u64(state)
    return state, (z >> 11) * (1.0 / (1 << 53))

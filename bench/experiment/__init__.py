"""Proposed game-server changes, applied only by benchmarks that ask for them."""

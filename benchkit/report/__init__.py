"""Leaderboards and other renderings of a run directory."""

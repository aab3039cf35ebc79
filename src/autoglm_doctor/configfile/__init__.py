"""Parsing deployment configs with positions, and env-var interpolation."""

"""Gathering facts: the stdlib-only interpreter probe and the typed Snapshot."""

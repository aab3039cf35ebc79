"""Test helpers: real venvs with hand-written dist-info, real snapshots, the CLI in-process."""

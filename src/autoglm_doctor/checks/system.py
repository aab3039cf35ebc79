"""system.*: container and host resources (GPU-stack area)."""

"""autoglm-doctor: a preflight doctor for Open-AutoGLM deployments."""

__version__ = "0.1.0"

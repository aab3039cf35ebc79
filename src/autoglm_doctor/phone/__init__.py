"""The phone agent's side of a served deployment: its screenshot, its request, its reply grammar.

Stdlib only and free of check logic, so the service.* checks, the benchmarks and the tests
build the very request the Open-AutoGLM client (``phone_agent``) sends.
"""

CLIENT_VARIABLES = (
    "PHONE_AGENT_BASE_URL",
    "PHONE_AGENT_MODEL",
    "PHONE_AGENT_API_KEY",
    "PHONE_AGENT_DEVICE_ID",
    "PHONE_AGENT_DEVICE_TYPE",
    "PHONE_AGENT_WDA_URL",
    "PHONE_AGENT_LANG",
)
"""The phone-agent client's own settings (Open-AutoGLM main.py): gathered into every snapshot, and one set
means the client runs here (role detection)."""

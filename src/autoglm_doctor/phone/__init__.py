"""The phone agent's side of a served deployment: its screenshot, its request, its reply grammar.

Stdlib only and free of check logic, so the service.* checks, the benchmarks and the tests
build the very request the Open-AutoGLM client (``phone_agent``) sends.
"""

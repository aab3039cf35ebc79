"""One call run in a thread, its result (or exception) collected later."""

from __future__ import annotations

import threading
from typing import Any


class Background:
    """Run one call in a thread; ``result()`` joins it and re-raises what it raised."""

    def __init__(self, func: Any, *args: Any) -> None:
        self._value: Any = None
        self._error: BaseException | None = None

        def target() -> None:
            try:
                self._value = func(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller in result()
                self._error = exc

        self._thread = threading.Thread(target=target, name="gather", daemon=True)
        self._thread.start()

    def result(self) -> Any:
        """Wait for the call and return its value (or raise its exception)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


class Ready:
    """A value already computed, answered as :class:`Background` answers (no thread: it costs 1 ms to start one)."""

    def __init__(self, value: Any) -> None:
        self._value = value

    def result(self) -> Any:
        """The value."""
        return self._value

"""urllib with a total deadline, a bounded error body, and no Authorization to another origin.

urllib's ``timeout`` is per socket operation: a server that trickles its headers or body a byte
at a time, or answers ``100 Continue`` forever, kept a 60 s check busy for 150 s and more. Here a
watchdog shuts the request's sockets down at the deadline, which ends any read in progress; what
fails after it is reported as :class:`TimeoutError`. urllib's redirect handler copies every
header, the API key included, to wherever a redirect points; here it is dropped when the scheme,
host or port changes. Proxies and TLS stay urllib's (``HTTP(S)_PROXY``, the default context).
"""

from __future__ import annotations

import contextlib
import http.client
import io
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

ERROR_BODY_BYTES = 1 << 16
"""The most of an HTTP error's body read (it is quoted in a finding)."""


class Watchdog:
    """Shuts down every socket of one exchange when its deadline passes.

    It holds each socket itself: http.client drops ``conn.sock`` once a response that ends with
    the connection (HTTP/1.0, no length) is under way, and a watchdog that looked there found
    nothing to shut, so a stream trickled a byte a second ran on for minutes past the deadline.
    """

    def __init__(self, timeout: float) -> None:
        """Start the timer: ``timeout`` seconds from now every watched socket is shut down."""
        self.deadline = time.monotonic() + timeout
        self.fired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, timeout), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock`` down at the deadline (at once when it has passed)."""
        with self._lock:
            self._sockets.append(sock)
            fired = self.fired
        if fired:
            self._shut(sock)

    def remaining(self) -> float:
        """Seconds left (at least a millisecond, so that a socket timeout stays valid)."""
        return max(0.001, self.deadline - time.monotonic())

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            sockets = list(self._sockets)
        for sock in sockets:
            self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    @property
    def expired(self) -> bool:
        """Whether the deadline has passed (whether or not the timer has run yet)."""
        return self.fired or time.monotonic() >= self.deadline

    def cancel(self) -> None:
        """Stop the timer (the exchange is over)."""
        self._timer.cancel()


def watched_connection(base: type[http.client.HTTPConnection], watchdog: Watchdog) -> Any:
    """A subclass of ``base`` whose sockets ``watchdog`` shuts down at its deadline; connecting counts too."""

    class Watched(base):  # type: ignore[valid-type,misc]
        def connect(self) -> None:
            self.timeout = watchdog.remaining()  # connecting counts against the same deadline
            super().connect()
            if self.sock is not None:
                watchdog.watch(self.sock)

    return Watched


class _SameOriginAuth(urllib.request.HTTPRedirectHandler):
    """Follows redirects, without the Authorization header when the origin changes."""

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and _origin(new.full_url) != _origin(req.full_url):
            for name in list(new.headers):
                if name.lower() in ("authorization", "proxy-authorization", "cookie"):
                    del new.headers[name]
        return new


def split_userinfo(url: str) -> tuple[str, str | None]:
    """``url`` without ``user:password@``, and the ``Basic`` Authorization value it stood for (None without one).

    The client's OpenAI SDK (httpx) sends credentials written in the base URL as HTTP Basic auth,
    in place of its bearer token; urllib would take them for part of the host name.
    """
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.netloc.rpartition("@")[2]
    import base64

    pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}".encode()
    return urlunsplit(parts._replace(netloc=host)), "Basic " + base64.b64encode(pair).decode("ascii")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    try:
        port = parts.port or default
    except ValueError:
        port = None
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def _opener(watchdog: Watchdog) -> urllib.request.OpenerDirector:
    watched_http = watched_connection(http.client.HTTPConnection, watchdog)
    watched_https = watched_connection(http.client.HTTPSConnection, watchdog)

    class HTTPHandler(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(watched_http, req)

    class HTTPSHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(watched_https, req)

    return urllib.request.build_opener(HTTPHandler(), HTTPSHandler(), _SameOriginAuth())


@contextlib.contextmanager
def urlopen(req: urllib.request.Request, timeout: float) -> Iterator[http.client.HTTPResponse]:
    """``urllib.request.urlopen(req)`` that ends, one way or another, ``timeout`` s after it starts.

    Raises what urlopen raises (``HTTPError`` with its body already read, at most
    :data:`ERROR_BODY_BYTES`; ``URLError``; ``OSError``), and :class:`TimeoutError` for anything
    that fails once the deadline has passed. Reads of the response inside the ``with`` block
    are under the same deadline.
    """
    watchdog = Watchdog(timeout)
    try:
        try:
            with _opener(watchdog).open(req, timeout=timeout) as resp:  # noqa: S310 - the user's own endpoint
                if watchdog.fired:  # the headers were cut short by the deadline
                    raise TimeoutError(f"no complete answer within {timeout:g} s")
                yield resp
                if watchdog.fired:  # what was read may be a cut-off body
                    raise TimeoutError(f"no complete answer within {timeout:g} s")
        except urllib.error.HTTPError as exc:
            body = exc.read(ERROR_BODY_BYTES) if exc.fp else b""
            raise urllib.error.HTTPError(exc.url, exc.code, exc.msg, exc.hdrs, io.BytesIO(body)) from None
        except TimeoutError:
            raise
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if watchdog.fired:
                raise TimeoutError(f"no complete answer within {timeout:g} s") from exc
            if isinstance(exc, http.client.IncompleteRead):
                raise ConnectionResetError(f"the answer ended early: {exc}") from exc
            if isinstance(exc, http.client.HTTPException) and not isinstance(exc, ConnectionResetError):
                raise OSError(f"malformed HTTP answer: {type(exc).__name__}: {exc}") from exc
            raise
    finally:
        watchdog.cancel()

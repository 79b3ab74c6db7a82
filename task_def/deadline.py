"""One deadline for a whole fetch: past it, every socket the fetch opened is shut down.

Socket timeouts bound each wait for the next byte, not the sum of the waits: a server that sends
its headers or its chunk sizes one byte at a time, each inside the read timeout, would otherwise
hold a fetch for as long as it likes. A timer thread shuts down the fetch's sockets at the deadline,
which ends whatever read is waiting (connect, TLS handshake, headers, body) at once.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import urllib3.connection


class Deadline:
    """A monotonic deadline that also cuts the sockets registered with it when it passes."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.expired = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._connections: list[urllib3.connection.HTTPConnection] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._timer.cancel()

    def left(self) -> float:
        """Seconds left (> 0), or 0 once the deadline has passed."""
        return 0.0 if self.expired else max(self.at - time.monotonic(), 0.0)

    def passed(self) -> bool:
        return self.left() <= 0

    def watch_socket(self, sock: socket.socket) -> None:
        """Shut `sock` down at the deadline (at once, if it has passed)."""
        with self._lock:
            if self.expired:
                _shut(sock)
            else:
                self._sockets.append(sock)

    def watch_connection(self, conn: urllib3.connection.HTTPConnection) -> None:
        """Shut down whatever socket `conn` holds at the deadline (plain, or TLS once wrapped)."""
        with self._lock:
            if self.expired:
                _shut(conn.sock)
            else:
                self._connections.append(conn)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in [*self._sockets, *(conn.sock for conn in self._connections)]:
                _shut(sock)


def _shut(sock: socket.socket | None) -> None:
    """End every read waiting on `sock` (the file stays open for its owner to close)."""
    if sock is None:
        return
    try:
        # The plain socket method, also for a TLS socket: no TLS goodbye, only the descriptor shut down.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # already closed or detached (the TLS wrapper took over its descriptor)


class _Watched:
    """Mixed into urllib3's connections: registers the connection and its raw socket with a Deadline."""

    def __init__(self, *args: object, deadline: Deadline, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._deadline = deadline
        deadline.watch_connection(self)  # type: ignore[arg-type]

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        self._deadline.watch_socket(sock)  # a TLS handshake reads on this one, before the wrapper exists
        return sock

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self._deadline.watch_connection(self)  # type: ignore[arg-type]


class WatchedHTTPConnection(_Watched, urllib3.connection.HTTPConnection):
    """An HTTP connection cut at its Deadline."""


class WatchedHTTPSConnection(_Watched, urllib3.connection.HTTPSConnection):
    """An HTTPS connection cut at its Deadline."""

"""A loopback HTTP server with the fixture pages the scrape tests read.

Every page is served from 127.0.0.1 only; the 200 MiB page is generated while it is sent, never
held in memory, and the server counts what it actually sent.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAGE = b"""<!doctype html><html><head><meta charset="utf-8"><title>  Fixture   page </title>
<style>body { color: red }</style></head>
<body><h1>Main heading</h1><p>one two three four five</p>
<h2>Second <em>level</em></h2><p>six seven</p><script>var hidden = "not words at all";</script>
<a href="/a">first link</a> <a href="https://example.org/b">second</a> <a name="anchor">no href</a>
<h3>Third</h3><h4>Too deep</h4></body></html>"""
#: A title that holds a script element, and an escaped one: the result must be text without either.
SCRIPT_TITLE = b"""<html><head><title><script>alert(1)</script>Safe &lt;b&gt;title</title></head>
<body><h1><script>alert(2)</script>Heading</h1><p>words here</p></body></html>"""
#: Text that looks like markup, written escaped as a page must: the result must say it as the page does.
FISH = b"""<html><head><title>Fish &lt;&amp;&gt; Chips</title></head>
<body><h1>Fish &lt;&amp;&gt; Chips</h1><h2>&lt;script&gt;alert(1)&lt;/script&gt; &amp;amp;</h2>
<p>[bold]not markup[/bold] \x1b[2J</p></body></html>"""
BIG_BYTES = 200 * 1024 * 1024
#: Hostile pages just under the 5 MiB cap, each built from one repeated unit (see `hostile_page`).
HOSTILE = {
    "links": (b"<html><body>", b'<a href="/x">x</a> '),
    "nested": (b"<html><body>", b"<div>"),  # five million tags deep, never closed
    "tiny": (b"<html><body>", b"<b></b>"),
    "open-tag": (b"<html><body><a", b' a="b"'),  # one start tag that never ends
    "open-title": (b"<html><title>", b"<i>x</i>"),
}
HOSTILE_BYTES = 5 * 1024 * 1024 - 1024
CHUNK = b"<p>" + b"x" * (64 * 1024 - 7) + b"</p>\n"


class Pages(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        path = self.path.split("?", 1)[0]
        self.server.requests.append((path, self.headers.get("Host")))
        if path == "/page":
            self._send(200, PAGE)
        elif path == "/script-title":
            self._send(200, SCRIPT_TITLE)
        elif path == "/fish":
            self._send(200, FISH)
        elif path.startswith("/hostile/") and path[len("/hostile/") :] in HOSTILE:
            self._send(200, hostile_page(path[len("/hostile/") :]))
        elif path.startswith("/redirect/"):
            hops = int(path.rsplit("/", 1)[1])
            self._redirect(f"/redirect/{hops - 1}" if hops > 1 else "/page")
        elif path == "/loop":
            self._redirect("/loop")
        elif path == "/to-other-port":
            self._redirect(self.server.other_url)
        elif path == "/to-absolute":
            self._redirect(f"http://127.0.0.1:{self.server.server_port}/page")
        elif path == "/json":
            self._send(200, b'{"title": "not html"}', "application/json")
        elif path == "/missing":
            self._send(404, b"<html><title>gone</title></html>")
        elif path == "/big":
            self._stream_big(declared=False)
        elif path == "/big-declared":
            self._stream_big(declared=True)
        elif path == "/drip":
            self._drip()
        else:
            self._send(404, b"no such fixture")

    def _send(self, status: int, body: bytes, content_type: str = "text/html; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _stream_big(self, declared: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        if declared:
            self.send_header("Content-Length", str(BIG_BYTES))
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        try:
            for _ in range(BIG_BYTES // len(CHUNK)):
                self.wfile.write(CHUNK)
                self.server.big_sent += len(CHUNK)
        except OSError:
            pass  # the client hung up at its cap: exactly what the test wants
        self.close_connection = True

    def _drip(self) -> None:
        """A page that keeps sending a little, each piece inside the read timeout, for ever."""
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            for _ in range(600):
                self.wfile.write(b"<p>drip</p>")
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass
        self.close_connection = True

    def log_message(self, *args) -> None:
        pass


_hostile_cache: dict[str, bytes] = {}


def hostile_page(kind: str) -> bytes:
    """A page of HOSTILE_BYTES: the kind's head, then its unit repeated."""
    if kind not in _hostile_cache:
        head, unit = HOSTILE[kind]
        _hostile_cache[kind] = (head + unit * (HOSTILE_BYTES // len(unit)))[:HOSTILE_BYTES]
    return _hostile_cache[kind]


class PageServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Pages)
        self.requests: list[tuple[str, str | None]] = []
        self.big_sent = 0
        self.other_url = ""

    def handle_error(self, request, client_address) -> None:
        pass  # a client that hangs up at its limit is the point of several fixtures, not an error

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server_port}"


@contextmanager
def serve_pages(tls: ssl.SSLContext | None = None) -> Iterator[PageServer]:
    """The fixture pages on a free loopback port, over https when given a server TLS context."""
    server = PageServer()
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def silent_server() -> Iterator[str]:
    """A loopback port that accepts connections (the kernel's backlog) and never answers a byte."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


class TrickleServer:
    """A loopback server that sends `prefix`, then `drip` one byte every `interval` seconds.

    `sent` counts the dripped bytes that went out before the client hung up, so a test can tell
    a client that gave up at its deadline from one that sat through the whole trickle.
    """

    def __init__(self, prefix: bytes, drip: bytes, interval: float = 0.05, read_request: bool = True) -> None:
        self.prefix, self.drip, self.interval, self.read_request = prefix, drip, interval, read_request
        self.sent = 0
        self.hung_up = threading.Event()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(1)
        self.host = f"127.0.0.1:{self._sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        try:
            conn, _ = self._sock.accept()
        except OSError:
            return
        with conn:
            try:
                if self.read_request:
                    request = b""
                    while b"\r\n\r\n" not in request:
                        data = conn.recv(4096)
                        if not data:
                            return
                        request += data
                conn.sendall(self.prefix)
                for byte in self.drip:
                    time.sleep(self.interval)
                    conn.sendall(bytes([byte]))
                    self.sent += 1
                conn.recv(1)  # all sent: wait for the client to hang up
            except OSError:
                pass
            finally:
                self.hung_up.set()


@contextmanager
def trickle_server(prefix: bytes, drip: bytes, **options) -> Iterator[TrickleServer]:
    """A TrickleServer serving one connection on a free loopback port."""
    server = TrickleServer(prefix, drip, **options)
    server._thread.start()
    try:
        yield server
    finally:
        server._sock.close()

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
BIG_BYTES = 200 * 1024 * 1024
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

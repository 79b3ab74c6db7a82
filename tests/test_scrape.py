"""The scrape task against loopback fixture pages, and every refusal the issue lists.

A guard on socket.connect and getaddrinfo records every connection this process opens and fails
the test on any non-loopback address or any name that would need DNS: nothing here leaves the
machine, and refused URLs are shown to be refused before any connection is attempted.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import socket
import ssl
import subprocess
import traceback

import pytest

from task_def.scrape import Limits, ScrapeFailed, scrape_page
from task_def.web_guard import ScrapeRefused, allowed_hosts, is_public, parse_url, url_param
from workbench.catalog import TaskFailed
from workbench.errors import UsageError

from .scrape_pages import PageServer, serve_pages, silent_server, trickle_server
from .support import free_port

#: Small limits keep the timeout cases fast; the production defaults are checked in the worker test.
FAST = Limits(connect_timeout_s=1.0, read_timeout_s=0.5, deadline_s=1.5)


@pytest.fixture
def connects(monkeypatch) -> list[tuple]:
    """Every address this process connects to while the test runs; non-loopback ones fail at once."""
    seen: list[tuple] = []
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(sock, address):
        seen.append(address)
        if not ipaddress.ip_address(address[0]).is_loopback:
            raise AssertionError(f"attempted a connection to {address}")
        return real_connect(sock, address)

    def getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name != "localhost":
            try:  # numeric forms only (127.1, 0x7f.1, 2130706433 ...): a DNS query would leave the machine
                real_getaddrinfo(name, None, flags=socket.AI_NUMERICHOST)
            except socket.gaierror:
                raise AssertionError(f"attempted a DNS lookup of {name!r}") from None
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return seen


@pytest.fixture
def pages(monkeypatch, connects):
    with serve_pages() as server:
        monkeypatch.setenv("SCRAPE_ALLOWED_HOSTS", server.host)
        yield server


def test_page_is_summarised_as_text(pages: PageServer, connects):
    result = scrape_page(f"{pages.base}/page#fragment", FAST)
    assert result["status"] == 200
    assert result["final_url"] == f"{pages.base}/page"
    assert result["title"] == "Fixture page"
    # Body text by hand: "Main heading one two three four five Second level six seven first link second
    # no href Third Too deep" (script and style are not words).
    assert result["words"] == 19
    assert result["links"] == 2  # the <a name> without href is not a link
    assert result["headings"] == [
        {"level": 1, "text": "Main heading"},
        {"level": 2, "text": "Second level"},
        {"level": 3, "text": "Third"},
    ]
    assert pages.requests == [("/page", pages.host)]  # the real Host header, fragment not sent
    assert {address[:2] for address in connects} == {("127.0.0.1", pages.server_port)}


def test_text_comes_back_as_the_page_says_it(pages: PageServer):
    """Data stays faithful: text that looks like markup is returned as text; escaping is each view's job."""
    fish = scrape_page(f"{pages.base}/fish", FAST)
    assert fish["title"] == "Fish <&> Chips"
    assert fish["headings"] == [
        {"level": 1, "text": "Fish <&> Chips"},
        {"level": 2, "text": "<script>alert(1)</script> &amp;"},
    ]
    # "Fish <&> Chips", "<script>alert(1)</script> &amp;", "[bold]not markup[/bold] \x1b[2J": 3 + 2 + 3
    assert fish["words"] == 8


def test_a_title_is_raw_text_and_a_script_is_never_text(pages: PageServer):
    """A browser titles `<title><script>x</script></title>` with that very string; a script in the body is code."""
    result = scrape_page(f"{pages.base}/script-title", FAST)
    assert result["title"] == "<script>alert(1)</script>Safe <b>title"
    assert result["headings"] == [{"level": 1, "text": "Heading"}]
    assert "alert(2)" not in json.dumps(result) and result["words"] == 3  # "Heading words here"


def test_redirects_are_followed_and_each_hop_checked(pages: PageServer):
    result = scrape_page(f"{pages.base}/redirect/3", FAST)
    assert (result["final_url"], result["redirects"], result["title"]) == (f"{pages.base}/page", 3, "Fixture page")
    assert scrape_page(f"{pages.base}/redirect/5", FAST)["redirects"] == 5
    with pytest.raises(ScrapeRefused, match="redirected more than 5 times"):
        scrape_page(f"{pages.base}/redirect/6", FAST)
    pages.requests.clear()
    with pytest.raises(ScrapeRefused, match="redirected more than 5 times"):
        scrape_page(f"{pages.base}/loop", FAST)
    assert len(pages.requests) == 6  # the first request and five hops, then it stopped


def test_allowed_host_redirecting_to_another_port_is_refused_before_connecting(pages: PageServer, connects):
    target_port = free_port()
    pages.other_url = f"http://127.0.0.1:{target_port}/"
    with pytest.raises(ScrapeRefused) as refused:
        scrape_page(f"{pages.base}/to-other-port", FAST)
    assert str(refused.value) == (
        f"refused the redirect to http://127.0.0.1:{target_port}/: 127.0.0.1 is not a public address; "
        f"name 127.0.0.1:{target_port} in SCRAPE_ALLOWED_HOSTS to allow it."
    )
    assert {address[1] for address in connects} == {pages.server_port}


def test_a_200_mib_body_is_cut_at_the_cap_while_streaming(pages: PageServer):
    with pytest.raises(ScrapeRefused, match=r"^the page is larger than the 5 MiB limit; stopped reading\."):
        scrape_page(f"{pages.base}/big", FAST)
    # The server stopped when the client hung up: a few MiB in socket buffers, nowhere near 200 MiB.
    assert pages.big_sent < 40 * 2**20
    sent_before = pages.big_sent
    with pytest.raises(ScrapeRefused, match=r"the page is 209,715,200 bytes, more than the 5 MiB limit"):
        scrape_page(f"{pages.base}/big-declared", FAST)
    assert pages.big_sent - sent_before < 40 * 2**20


def test_a_server_that_never_answers_times_out(connects, monkeypatch):
    with silent_server() as host:
        monkeypatch.setenv("SCRAPE_ALLOWED_HOSTS", host)
        with pytest.raises(ScrapeFailed, match=r"^127\.0\.0\.1 did not answer within 0\.5 s\."):
            scrape_page(f"http://{host}/", FAST)


def test_a_dripping_server_hits_the_overall_deadline(pages: PageServer):
    with pytest.raises(ScrapeFailed, match=r"^the page took longer than 1\.5 s to fetch\."):
        scrape_page(f"{pages.base}/drip", FAST)


HTML_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
#: A server that never stops but never waits long: each byte arrives well inside the read timeout.
TRICKLES = {
    "status line": ("http", b"", b"HTTP/1.1 200 OK\r\n" + b"X: " + b"a" * 2000),
    "headers": ("http", HTML_HEAD + b"X-Slow: ", b"a" * 2000),
    "chunk sizes": ("http", HTML_HEAD + b"Transfer-Encoding: chunked\r\n\r\n", b"0" * 2000),
    "chunks of one byte": ("http", HTML_HEAD + b"Transfer-Encoding: chunked\r\n\r\n", b"1\r\nx\r\n" * 400),
    "body": ("http", HTML_HEAD + b"Connection: close\r\n\r\n", b"<p>" * 700),
    "TLS handshake": ("https", b"\x16\x03\x03\x40\x00", b"\x02" * 2000),  # a 16 KiB record, byte by byte
}


@pytest.mark.parametrize("what", list(TRICKLES))
def test_the_deadline_covers_a_server_that_trickles(what, connects, monkeypatch):
    """Connect, handshake, status, headers, chunk sizes and body all count against the one deadline."""
    scheme, prefix, drip = TRICKLES[what]
    # Python bounds a whole TLS handshake by the connect timeout; above the deadline, the deadline decides.
    limits = FAST if scheme == "http" else Limits(connect_timeout_s=10.0, read_timeout_s=0.5, deadline_s=1.5)
    with trickle_server(prefix, drip, read_request=scheme == "http") as server:
        monkeypatch.setenv("SCRAPE_ALLOWED_HOSTS", server.host)
        with pytest.raises(ScrapeFailed, match=r"^the page took longer than 1\.5 s to fetch\."):
            scrape_page(f"{scheme}://{server.host}/", limits)
        assert server.hung_up.wait(10), "the scrape returned but left the connection open"
    # A byte every 0.05 s: the whole trickle lasts over 100 s; cut at 1.5 s, a few dozen bytes went out.
    assert server.sent < len(drip) // 4


def test_non_html_missing_pages_and_closed_ports_fail_with_a_sentence(pages: PageServer, monkeypatch):
    with pytest.raises(ScrapeRefused, match=r"^the page is application/json, not HTML\."):
        scrape_page(f"{pages.base}/json", FAST)
    with pytest.raises(ScrapeFailed, match=rf"^{pages.host} answered HTTP 404 \(Not Found\)\."):
        scrape_page(f"{pages.base}/missing", FAST)
    closed = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("SCRAPE_ALLOWED_HOSTS", closed)
    with pytest.raises(ScrapeFailed, match=rf"^could not connect to {closed} \(connection refused or reset\)\."):
        scrape_page(f"http://{closed}/", FAST)


REFUSED = [
    ("http://127.0.0.1:6379/", "127.0.0.1 is not a public address"),
    ("http://localhost:9181/requeue/x", "localhost resolves to 127.0.0.1, which is not a public address"),
    ("http://[::1]/", "::1 is not a public address"),
    ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1 is not a public address"),
    ("http://2130706433/", "2130706433 resolves to 127.0.0.1, which is not a public address"),
    ("http://0x7f.1/", "0x7f.1 resolves to 127.0.0.1, which is not a public address"),
    ("http://0/", "0 resolves to 0.0.0.0, which is not a public address"),
    ("http://169.254.169.254/", "169.254.169.254 is not a public address"),
    ("http://10.0.0.1/", "10.0.0.1 is not a public address"),
    ("http://100.64.0.1/", "100.64.0.1 is not a public address"),
    ("file:///etc/passwd", "only http and https URLs can be scraped, not file:"),
    ("gopher://127.0.0.1:6379/_x", "only http and https URLs can be scraped, not gopher:"),
    ("javascript:alert(1)", "only http and https URLs can be scraped, not javascript:"),
    ("http://user:secret@127.0.0.1/", "URLs with credentials"),
    ("http://[2002:7f00:1::]/", "2002:7f00:1:: is not a public address"),  # 6to4 wrapping 127.0.0.1
]


@pytest.mark.parametrize(("url", "reason"), REFUSED)
def test_unsafe_urls_are_refused_before_any_connection(url, reason, pages: PageServer, connects):
    with pytest.raises(ScrapeRefused) as refused:
        scrape_page(url, FAST)
    sentence = str(refused.value)
    assert reason in sentence
    assert "\n" not in sentence and sentence.endswith(".")
    assert connects == []
    assert pages.requests == []


def test_the_error_rq_stores_ends_with_exactly_the_sentence(pages: PageServer):
    """RQ records the formatted traceback; the producer's error column shows its last line."""
    with pytest.raises(TaskFailed) as refused:
        scrape_page("http://10.0.0.1/", FAST)
    stored = "".join(traceback.format_exception(refused.value))
    assert stored.strip().splitlines()[-1] == str(refused.value)


def test_dns_answers_are_pinned_and_the_real_name_is_sent(pages: PageServer, connects, monkeypatch):
    """A name checked once is connected to at the checked address, even if it re-resolves elsewhere."""
    answers = iter(["127.0.0.1", "10.0.0.1"])  # the second answer is a rebinding to a private address
    lookups: list[str] = []
    numeric = socket.getaddrinfo

    def rebinding(host, port, *args, **kwargs):
        if host == "pages.test":
            lookups.append(host)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]
        return numeric(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    monkeypatch.setenv("SCRAPE_ALLOWED_HOSTS", f"pages.test:{pages.server_port}")
    result = scrape_page(f"http://pages.test:{pages.server_port}/page", FAST)
    assert result["title"] == "Fixture page"
    assert lookups == ["pages.test"]
    assert pages.requests == [("/page", f"pages.test:{pages.server_port}")]
    assert {address[0] for address in connects} == {"127.0.0.1"}


def test_allowed_hosts_name_host_and_port():
    allowed = allowed_hosts(" 127.0.0.1:8000, localhost ,[::1]:99,")
    assert allowed == {("127.0.0.1", 8000), ("localhost", None), ("::1", 99)}
    with pytest.raises(ScrapeRefused, match=r"^SCRAPE_ALLOWED_HOSTS entry 'a:b' is not host\[:port\]\."):
        allowed_hosts("a:b")
    with pytest.raises(ScrapeRefused, match="is not host"):
        allowed_hosts("example.com/path")


def test_a_bare_allowed_host_opens_only_its_default_port(connects, monkeypatch):
    monkeypatch.setenv("SCRAPE_ALLOWED_HOSTS", "127.0.0.1")
    with pytest.raises(ScrapeRefused, match="name 127.0.0.1:8080 in SCRAPE_ALLOWED_HOSTS"):
        scrape_page("http://127.0.0.1:8080/", FAST)
    assert connects == []


#: An attacker's table: every way of writing a non-public address, each class at least once, and public
#: addresses (also inside IPv6 wrappers) that must stay reachable.
PRIVATE_ADDRESSES = [
    # IPv4: this host, private, shared, link-local (cloud metadata), special-purpose, documentation,
    # benchmarking, deprecated 6to4 relay, multicast, reserved, broadcast
    "0.0.0.0", "0.1.2.3", "127.0.0.1", "127.255.255.254", "10.0.0.1", "172.16.0.1", "172.31.255.255",
    "192.168.1.1", "100.64.0.1", "100.127.255.254", "169.254.169.254", "192.0.0.8", "192.0.0.170", "192.0.2.1",
    "198.18.0.1", "198.19.255.255", "198.51.100.7", "203.0.113.9", "192.88.99.1", "224.0.0.1", "239.255.255.250",
    "240.0.0.1", "255.255.255.255",
    # IPv6: unspecified, loopback, link-local (with a zone), unique-local, deprecated site-local, multicast,
    # discard, documentation (old and new), IETF assignments, SRv6 SIDs
    "::", "::1", "fe80::1", "fe80::1%eth0", "fc00::1", "fd12:3456::1", "fec0::1", "feff::1", "ff02::1",
    "ff0e::1", "100::1", "2001:db8::1", "3fff::1", "2001:2::1", "2001:10::1", "5f00::1",
    # IPv4 inside IPv6: mapped, translated (::ffff:0:a.b.c.d), compatible (::a.b.c.d), NAT64 (well-known
    # and local-use), 6to4, Teredo (server or client private) -- private whatever IPv4 they carry
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::ffff:8.8.8.8", "::ffff:0:7f00:1",
    "::ffff:0:808:808", "::7f00:1", "::808:808", "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b::a00:1",
    "64:ff9b:1::a00:1", "64:ff9b:1::808:808", "2002:7f00:1::", "2002:a00:1::1", "2002:a9fe:a9fe::1",
    "2001:0:4136:e378:8000:63bf:80ff:fffe", "2001:0:a00:1::1", "2001::1",
]  # fmt: skip
PUBLIC_ADDRESSES = [
    "93.184.215.14", "8.8.8.8", "1.1.1.1", "2606:4700::1111", "2a00:1450:4001:82b::200e",
    "64:ff9b::808:808",  # NAT64 of a public address: what an IPv6-only network's DNS64 answers
    "2002:808:808::1",  # 6to4 of a public address
]  # fmt: skip


@pytest.mark.parametrize("address", PRIVATE_ADDRESSES)
def test_addresses_that_are_not_globally_routable_are_private(address):
    assert is_public(address) is False


@pytest.mark.parametrize("address", PUBLIC_ADDRESSES)
def test_public_addresses_stay_reachable(address):
    assert is_public(address) is True


@pytest.mark.parametrize(
    "host", ["[fec0::1]", "[::ffff:0:7f00:1]", "[64:ff9b::7f00:1]", "[64:ff9b:1::a00:1]", "[::7f00:1]", "0177.0.0.1"]
)
def test_wrapped_and_odd_addresses_are_refused_before_connecting(host, pages: PageServer, connects):
    with pytest.raises(ScrapeRefused, match="is not a public address"):
        scrape_page(f"http://{host}/", FAST)
    assert connects == []


def test_the_producer_checks_the_url_shape_without_resolving(connects):
    assert url_param(" HTTP://Example.COM:80/a?b#c ") == "http://example.com/a?b"
    assert parse_url("https://[::1]:8443/").host_header == "[::1]:8443"
    for url in ("file:///etc/passwd", "javascript:alert(1)", "http://a b/", "http://u:p@h/", "http:///x"):
        with pytest.raises(UsageError, match=r"^url: "):
            url_param(url)
    assert connects == []


def _openssl(folder, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """A throw-away CA and a certificate it signed for the name `pages.test` only."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make test certificates")
    folder = tmp_path_factory.mktemp("tls")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(folder, "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=test-ca")
    _openssl(folder, "req", *ec, "-keyout", "site.key", "-out", "site.csr", "-subj", "/CN=pages.test")
    (folder / "ext.cnf").write_text("subjectAltName=DNS:pages.test\n")
    _openssl(folder, "x509", "-req", "-in", "site.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "site.crt", "-days", "2", "-extfile", "ext.cnf")  # fmt: skip
    return folder


def test_https_is_pinned_to_the_checked_address_with_the_real_name_for_sni(certificates, connects, monkeypatch):
    names: list[str | None] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates / "site.crt", certificates / "site.key")
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    numeric = socket.getaddrinfo

    def pages_test_is_loopback(host, port, *args, **kwargs):
        return numeric("127.0.0.1" if host == "pages.test" else host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", pages_test_is_loopback)
    limits = Limits(connect_timeout_s=1.0, read_timeout_s=1.0, deadline_s=3.0, verify=str(certificates / "ca.crt"))
    with serve_pages(tls=context) as pages:
        port = pages.server_port
        monkeypatch.setenv("SCRAPE_ALLOWED_HOSTS", f"pages.test:{port},127.0.0.1:{port}")
        result = scrape_page(f"https://pages.test:{port}/redirect/1", limits)
        assert (result["final_url"], result["title"]) == (f"https://pages.test:{port}/page", "Fixture page")
        assert names == ["pages.test", "pages.test"]  # SNI carries the name, though the socket went to the IP
        assert pages.requests == [("/redirect/1", f"pages.test:{port}"), ("/page", f"pages.test:{port}")]
        assert {address[0] for address in connects} == {"127.0.0.1"}
        # The certificate names pages.test only: by address, the same server is not trusted.
        with pytest.raises(ScrapeFailed, match=r"^the TLS certificate of 127\.0\.0\.1 could not be verified\."):
            scrape_page(f"https://127.0.0.1:{port}/page", limits)

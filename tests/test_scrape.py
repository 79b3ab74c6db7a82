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

from .scrape_pages import PageServer, serve_pages, silent_server
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


def test_script_in_the_title_comes_back_as_plain_text(pages: PageServer):
    result = scrape_page(f"{pages.base}/script-title", FAST)
    assert result["title"] == "Safe title"
    assert result["headings"] == [{"level": 1, "text": "Heading"}]
    flat = json.dumps(result)
    assert "<" not in flat and "alert" not in flat


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


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:4700::1111", True),
        ("8.8.8.8", True),
        ("127.0.0.1", False),
        ("0.0.0.0", False),
        ("192.168.1.1", False),
        ("224.0.0.1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:10.0.0.1", False),
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 form of 169.254.169.254
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", False),  # Teredo whose client is 127.0.0.1
        ("::7f00:1", False),  # IPv4-compatible ::127.0.0.1
    ],
)
def test_public_addresses(address, public):
    assert is_public(address) is public


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

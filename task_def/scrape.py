"""The `scrape` task: fetch one HTML page safely and return facts about it, as the page says them.

Every hop (the first request and each redirect, at most five) is checked by `web_guard` and then
connected to the checked address itself: `PinnedAdapter` opens the socket to that IP while the
request carries the real Host header (and, for https, the real SNI name and certificate check).
Limits: connect and read timeouts, one deadline over everything (`deadline.Deadline`), a 5 MiB
streamed body cap, HTML only. The page is parsed as it streams in (`html_summary.PageReader`),
never held whole.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import urljoin

import requests
import urllib3
import urllib3.connectionpool
from requests.adapters import HTTPAdapter

from workbench import defaults
from workbench.catalog import STR, Param, TaskFailed, task
from workbench.progress import report

from .deadline import Deadline, WatchedHTTPConnection, WatchedHTTPSConnection
from .html_summary import PageReader
from .web_guard import ScrapeRefused, Target, allowed_hosts, checked_addresses, parse_url, quoted, url_param

REDIRECTS = {301, 302, 303, 307, 308}
HTML_TYPES = {"text/html", "application/xhtml+xml"}
CHUNK_BYTES = 64 * 1024
USER_AGENT = "rq-workbench-scrape/0.1"


class ScrapeFailed(TaskFailed):
    """Raised when a permitted fetch fails (timeout, refused connection, HTTP error); one sentence."""


@dataclass(frozen=True)
class Limits:
    """How long and how much one scrape may take; tests shrink them to stay fast."""

    connect_timeout_s: float = defaults.SCRAPE_CONNECT_TIMEOUT_S
    read_timeout_s: float = defaults.SCRAPE_READ_TIMEOUT_S
    deadline_s: float = defaults.SCRAPE_DEADLINE_S
    max_bytes: int = defaults.SCRAPE_MAX_BYTES
    max_redirects: int = defaults.SCRAPE_MAX_REDIRECTS
    verify: bool | str = True  # certificate check for https: True (certifi) or a CA bundle path


class PinnedAdapter(HTTPAdapter):
    """Sends a request to one already-checked IP address, whatever the URL's host would resolve to now."""

    def __init__(self, address: str, target: Target, deadline: Deadline) -> None:
        self.address, self.target, self.deadline = address, target, deadline
        super().__init__(max_retries=0)

    def get_connection_with_tls_context(
        self,
        request: requests.PreparedRequest,
        verify: bool | str | None,
        proxies: Mapping[str, str] | None = None,
        cert: tuple[str, str] | str | None = None,
    ) -> urllib3.connectionpool.ConnectionPool:
        pool_kwargs = {}
        if self.target.scheme == "https":
            # SNI and the certificate's name are the real host's; only the socket goes to the IP.
            pool_kwargs = {"server_hostname": self.target.host, "assert_hostname": self.target.host}
        pool = self.poolmanager.connection_from_host(
            self.address, self.target.port, scheme=self.target.scheme, pool_kwargs=pool_kwargs
        )
        # Every connection of this pool (one adapter per checked address) is cut at the fetch's deadline.
        pool.ConnectionCls = WatchedHTTPSConnection if self.target.scheme == "https" else WatchedHTTPConnection
        pool.conn_kw["deadline"] = self.deadline
        return pool


@task(
    params=[Param("url", STR, None, "http(s) URL of the page", maximum=2048, required=True, check=url_param)],
    timeout=defaults.SCRAPE_JOB_TIMEOUT_S,
    io_bound=True,
    shown=("title", "words", "status", "final_url"),
)
def scrape(url: str) -> dict:
    """Fetch one public web page; return its status, title, word and link counts, headings.

    Within the default limits (`Limits`); the text is returned as the page says it.
    """
    return scrape_page(url, Limits())


def scrape_page(url: str, limits: Limits) -> dict:
    """Fetch `url` (following at most `limits.max_redirects` checked redirects) and summarise the page."""
    allowed = allowed_hosts(os.environ.get(defaults.ENV_SCRAPE_ALLOWED_HOSTS))
    target = parse_url(url)
    with Deadline(limits.deadline_s) as deadline:
        for hop in range(limits.max_redirects + 1):
            report(0.1 * hop / (limits.max_redirects + 1), f"fetching {quoted(target.url)}")
            response = _send(target, allowed, limits, deadline, "the redirect to " if hop else "")
            try:
                location = response.headers.get("Location")
                if response.status_code in REDIRECTS and location:
                    target = _next_hop(target, location)
                    continue
                size, summary = _read_page(response, target, limits, deadline)
            finally:
                response.close()
            report(1.0, "done")
            return {"url": url, "final_url": target.url, "status": response.status_code, "redirects": hop,
                    "bytes": size, **summary}  # fmt: skip
    raise ScrapeRefused(f"{quoted(url)} redirected more than {limits.max_redirects} times.")


def _next_hop(current: Target, location: str) -> Target:
    """The redirect's target, checked like the first URL; a refusal names the redirect."""
    next_url = urljoin(current.url, location.strip())
    try:
        return parse_url(next_url)
    except ScrapeRefused as exc:
        raise ScrapeRefused(f"refused the redirect to {quoted(next_url)}: {exc}") from None


def _send(
    target: Target, allowed: frozenset[tuple[str, int | None]], limits: Limits, deadline: Deadline, what: str
) -> requests.Response:
    """Resolve and check the host, then try its checked addresses in turn until one connects."""
    try:
        addresses = checked_addresses(target, allowed)
    except ScrapeRefused as exc:
        raise ScrapeRefused(f"refused {what}{quoted(target.url)}: {exc}") from None
    request = requests.Request("GET", target.url, headers=_headers(target)).prepare()
    failure: Exception | None = None
    for address in addresses:
        left = _time_left(deadline)
        adapter = PinnedAdapter(address, target, deadline)
        try:
            timeout = (min(limits.connect_timeout_s, left), min(limits.read_timeout_s, left))
            response = adapter.send(request, stream=True, timeout=timeout, verify=limits.verify)
            if deadline.expired:  # cut mid-headers: what arrived is not the server's whole answer
                response.close()
                _time_left(deadline)
            return response
        except requests.exceptions.SSLError:
            _time_left(deadline)  # a handshake cut at the deadline is the deadline's failure
            raise ScrapeFailed(f"the TLS certificate of {target.host} could not be verified.") from None
        except (requests.exceptions.ConnectTimeout, requests.exceptions.ConnectionError) as exc:
            _time_left(deadline)
            failure = exc  # this address is down; the next one may answer
        except requests.exceptions.Timeout:
            _time_left(deadline)
            raise ScrapeFailed(f"{target.host} did not answer within {timeout[1]:g} s.") from None
        except requests.exceptions.RequestException as exc:
            _time_left(deadline)
            raise ScrapeFailed(f"fetching {quoted(target.url)} failed ({type(exc).__name__}).") from None
    if isinstance(failure, requests.exceptions.ConnectTimeout):
        raise ScrapeFailed(f"could not connect to {target.host_header} within {limits.connect_timeout_s:g} s.")
    raise ScrapeFailed(f"could not connect to {target.host_header} (connection refused or reset).")


def _headers(target: Target) -> dict[str, str]:
    return {
        "Host": target.host_header,
        "User-Agent": USER_AGENT,
        "Accept": "text/html,application/xhtml+xml;q=0.9",
        "Accept-Encoding": "identity",  # no compression: the byte cap then bounds what is read directly
    }


def _time_left(deadline: Deadline) -> float:
    """Seconds left before the deadline, or the deadline's one-sentence failure."""
    left = deadline.left()
    if left <= 0:
        raise ScrapeFailed(f"the page took longer than {deadline.seconds:g} s to fetch.")
    return left


def _read_page(response: requests.Response, target: Target, limits: Limits, deadline: Deadline) -> tuple[int, dict]:
    """Check status and type, then parse at most `limits.max_bytes` of body as it streams in."""
    status = response.status_code
    if status >= 400 or status < 200:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "unknown status"
        raise ScrapeFailed(f"{target.host_header} answered HTTP {status} ({phrase}).")
    media = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if media not in HTML_TYPES:
        raise ScrapeRefused(f"the page is {quoted(media) if media else 'of no declared type'}, not HTML.")
    cap = f"{limits.max_bytes / 2**20:g} MiB"
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limits.max_bytes:
        raise ScrapeRefused(f"the page is {int(declared):,} bytes, more than the {cap} limit.")
    reader, size = PageReader(_charset(response)), 0
    try:
        # read1 returns what has arrived (up to a chunk); the deadline's timer cuts a read that drips.
        while chunk := response.raw.read1(CHUNK_BYTES):
            size += len(chunk)
            if size > limits.max_bytes:
                raise ScrapeRefused(f"the page is larger than the {cap} limit; stopped reading.")
            reader.feed_bytes(chunk)
            _time_left(deadline)
            if declared.isdigit():
                report(0.1 + 0.85 * size / max(int(declared), 1), f"read {size:,} bytes")
    except urllib3.exceptions.ReadTimeoutError:
        _time_left(deadline)
        raise ScrapeFailed(f"{target.host} stopped sending for {limits.read_timeout_s:g} s.") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        _time_left(deadline)
        raise ScrapeFailed(f"reading the page from {target.host} failed ({type(exc).__name__}).") from None
    _time_left(deadline)  # a server that closed the connection when its sockets were shut down
    return size, reader.finish()


def _charset(response: requests.Response) -> str | None:
    """The charset the server declared, if any (else the reader looks for <meta charset>)."""
    for part in response.headers.get("Content-Type", "").split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return value.strip().strip("\"'")
    return None


__all__ = ["Limits", "ScrapeFailed", "ScrapeRefused", "scrape", "scrape_page"]

"""Which URLs the scrape task may open: the URL's shape, the allowed-hosts list, and public addresses.

The policy: http and https only, no credentials in the URL, and every address the host resolves
to must be public, unless the host is named in SCRAPE_ALLOWED_HOSTS. The fetcher connects only
to an address returned by `checked_addresses`, so a name that resolves differently a moment
later (DNS rebinding) changes nothing.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from workbench.catalog import TaskFailed
from workbench.errors import UsageError

SCHEMES = {"http": 80, "https": 443}
#: The only IPv6 space handed out for global unicast (RFC 4291, IANA): everything outside it
#: (IPv4-mapped, -translated and -compatible forms, site-local fec0::/10, ULA, link-local, 100::/64,
#: 5f00::/16 ...) is not a public address, whatever a given Python's `ipaddress` says.
_GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")
#: The well-known NAT64 prefix (RFC 6052): outside 2000::/3, but the gateway connects to the IPv4
#: address in the last 32 bits, so that address decides. (The local-use 64:ff9b:1::/48 of RFC 8215
#: places it by a prefix length only its network knows: it is never public.)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: IANA special-purpose blocks that are not globally reachable but that older Pythons' `ipaddress`
#: (3.11.7 here, 3.11.2 in Debian) count as global; newer ones agree, so this only adds certainty.
_NOT_GLOBAL = tuple(
    ipaddress.ip_network(block)
    for block in (
        "192.0.0.0/24",  # IETF protocol assignments
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "3fff::/20",  # documentation (RFC 9637)
        "2001::/23",  # IETF protocol assignments, Teredo among them
        "2001:db8::/32",  # documentation
    )
)
_UNSAFE_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
#: Longest URL quoted back in an error sentence.
_QUOTE_MAX = 120


class ScrapeRefused(TaskFailed):
    """Raised when a URL or address is outside what scrape may open; the message is one sentence."""


@dataclass(frozen=True)
class Target:
    """One URL to fetch, parsed once: the fetcher uses these fields, never a second parse of the URL."""

    url: str
    scheme: str
    host: str  # lower-case, IDNA-encoded, no brackets or trailing dot
    port: int

    @property
    def host_header(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == SCHEMES[self.scheme] else f"{name}:{self.port}"


def quoted(url: str) -> str:
    """A URL shortened for an error sentence."""
    return url if len(url) <= _QUOTE_MAX else url[: _QUOTE_MAX - 3] + "..."


def parse_url(raw: str) -> Target:
    """Check a URL's shape (scheme, credentials, host, port) and normalise it, or raise ScrapeRefused."""
    text = str(raw).strip()
    if _UNSAFE_CHARS.search(text):
        raise ScrapeRefused("the URL contains spaces, control characters or backslashes; percent-encode them.")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ScrapeRefused(f"{quoted(text)} is not a valid URL.") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        shown = f"{scheme}:" if scheme else "a URL without a scheme"
        raise ScrapeRefused(f"only http and https URLs can be scraped, not {shown}.")
    if "@" in parts.netloc:
        raise ScrapeRefused("URLs with credentials (user:password@) are refused; scrape public pages only.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise ScrapeRefused(f"{quoted(text)} names no host.")
    if port == 0:
        raise ScrapeRefused(f"{quoted(text)} names port 0.")
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        raise ScrapeRefused(f"the host name in {quoted(text)} is not a valid internationalised name.") from None
    port = port or SCHEMES[scheme]
    target = Target(url="", scheme=scheme, host=host, port=port)
    url = urlunsplit((scheme, target.host_header, parts.path or "/", parts.query, ""))
    return Target(url=url, scheme=scheme, host=host, port=port)


def url_param(raw: object) -> str:
    """Param check for the producer: the URL's shape only (addresses are checked where it is fetched)."""
    try:
        return parse_url(str(raw)).url
    except ScrapeRefused as exc:
        raise UsageError(f"url: {exc}") from None


def allowed_hosts(setting: str | None) -> frozenset[tuple[str, int | None]]:
    """Parse SCRAPE_ALLOWED_HOSTS (`host[:port]`, comma-separated) into (host, port or None) pairs."""
    entries = set()
    for entry in (setting or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        try:
            parts = urlsplit(f"//{entry}")
            port = parts.port
        except ValueError:
            port, parts = -1, None
        if parts is None or port == -1 or not parts.hostname or parts.path or "@" in entry:
            raise ScrapeRefused(f"SCRAPE_ALLOWED_HOSTS entry {entry!r} is not host[:port].")
        entries.add((parts.hostname.rstrip("."), port))
    return frozenset(entries)


def is_allowed(target: Target, allowed: frozenset[tuple[str, int | None]]) -> bool:
    """Named in the allowed list: with its port, or bare for the scheme's default port."""
    default = SCHEMES[target.scheme]
    return (target.host, target.port) in allowed or (target.port == default and (target.host, None) in allowed)


def is_public(address: str) -> bool:
    """Whether an address is globally routable; anything the checks cannot show to be is private.

    Python's `ipaddress` classification first (private, reserved, loopback, link-local, multicast,
    unspecified, not global), then what it may miss: IPv6 outside global unicast space, IANA's
    non-global blocks, and any IPv4 address carried inside an IPv6 one (NAT64, 6to4, Teredo's
    server and client), which must be public itself.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if ip in _NAT64:
            return all(is_public(str(v4)) for v4 in embedded)
        if ip not in _GLOBAL_UNICAST_V6 or not all(is_public(str(v4)) for v4 in embedded):
            return False
    flags = (ip.is_private, ip.is_reserved, ip.is_loopback, ip.is_link_local, ip.is_multicast, ip.is_unspecified)
    return ip.is_global and not any(flags) and not any(ip in network for network in _NOT_GLOBAL)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries: mapped, 6to4, Teredo server and client, or NAT64."""
    found = [v4 for v4 in (ip.ipv4_mapped, ip.sixtofour) if v4 is not None]
    if ip.teredo:
        found.extend(ip.teredo)
    if ip in _NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def checked_addresses(target: Target, allowed: frozenset[tuple[str, int | None]]) -> list[str]:
    """Resolve the host once and return its addresses, all of them public unless the host is allowed."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise ScrapeRefused(f"could not resolve the host {target.host}.") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise ScrapeRefused(f"could not resolve the host {target.host}.")
    if is_allowed(target, allowed):
        return addresses
    for address in addresses:
        if not is_public(address):
            what = address if address == target.host else f"{target.host} resolves to {address}, which"
            raise ScrapeRefused(
                f"{what} is not a public address; name {target.host_header} in SCRAPE_ALLOWED_HOSTS to allow it."
            )
    return addresses

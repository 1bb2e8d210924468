"""Requests to URLs that users give us (webhooks), without letting them reach inside our network (SSRF).

`check_url(url)` refuses anything but https (plain http only with WEBHOOK_ALLOW_HTTP), resolves the host and
refuses it when ANY of its addresses is not a public one (private, loopback, link-local, multicast, reserved,
unspecified, or a cloud metadata address), unless the address lies in WEBHOOK_ALLOWED_NETWORKS (never the
metadata addresses). `post(target, ...)` then connects to the address that was checked, not to a second DNS
answer (no rebinding), sending the host name in `Host` and in TLS's SNI and certificate check, follows no
redirect, and keeps only a short excerpt of the answer.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
import urllib3
from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
METADATA_ADDRESSES = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})
EXCERPT_BYTES = 300
DEFAULT_PORTS = {"https": 443, "http": 80}


class UnsafeURL(ValueError):
    """The URL may not be called; the message says why (shown to the user, stored on the delivery)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written in the URL, lower-case, without brackets
    port: int
    path: str  # path and query
    address: IPAddress  # the checked address the request connects to

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


@dataclass(frozen=True)
class Answer:
    status: int
    excerpt: str


def check_url(url: str) -> Target:
    """The URL's target, resolved and checked; raises UnsafeURL naming the problem."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"The URL is not valid: {exc}.") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UnsafeURL("The URL must start with https://.")
    if scheme == "http" and not settings.WEBHOOK_ALLOW_HTTP:
        raise UnsafeURL("Only https:// URLs are allowed.")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL("The URL must not carry a user name or password.")
    host = parts.hostname
    if not host:
        raise UnsafeURL("The URL has no host.")
    port = port or DEFAULT_PORTS[scheme]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise UnsafeURL(f"The host {host} does not resolve.") from None
    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnsafeURL(f"The host {host} does not resolve.")
    for address in addresses:
        _check_address(host, address)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme=scheme, host=host, port=port, path=path, address=addresses[0])


def _check_address(host: str, address: IPAddress) -> None:
    candidates = [address]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        candidates.append(address.ipv4_mapped)
    for candidate in candidates:
        if candidate in METADATA_ADDRESSES:
            raise UnsafeURL(f"{host} resolves to {address}, a cloud metadata address.")
    if all(_is_public(candidate) for candidate in candidates):
        return
    networks = [ipaddress.ip_network(cidr.strip(), strict=False) for cidr in settings.WEBHOOK_ALLOWED_NETWORKS if cidr]
    if any(
        candidate in network for candidate in candidates for network in networks if network.version == candidate.version
    ):
        return
    raise UnsafeURL(
        f"{host} resolves to {address}, which is not a public address "
        "(private, loopback, link-local, multicast, reserved or unspecified)."
    )


def _is_public(address: IPAddress) -> bool:
    refused = (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )
    return address.is_global and not refused


def post(target: Target, body: bytes, headers: dict[str, str], *, timeout: float) -> Answer:
    """POST `body` to the checked address. Raises urllib3's HTTPError or OSError when no answer came."""
    common = {"port": target.port, "timeout": urllib3.Timeout(total=timeout), "retries": False}
    if target.scheme == "https":
        pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(
            str(target.address),
            cert_reqs="CERT_REQUIRED",
            ca_certs=settings.WEBHOOK_CA_BUNDLE or certifi.where(),
            server_hostname=target.host,
            assert_hostname=target.host,
            **common,
        )
    else:
        pool = urllib3.HTTPConnectionPool(str(target.address), **common)
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Host": target.host_header},
            redirect=False,
            retries=False,
            assert_same_host=False,
            preload_content=False,
        )
        try:
            excerpt = response.read(EXCERPT_BYTES, decode_content=False)
        finally:
            response.close()
        return Answer(status=response.status, excerpt=excerpt.decode(errors="replace"))
    finally:
        pool.close()

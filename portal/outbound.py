"""Resolve, check, pin: every outbound request to an end-user-chosen host.

Apps with a ``hostname`` account field (self-hosted Mattermost, Nextcloud, YouTrack, …) send
the end user's credentials, and the portal's own OAuth client secret, to a host the end user
typed in. Every request to such a host — the connect-time token request, identity lookup and
API-key verification, refresh, revocation, the proxy and functions — goes through here:

1. the host name is resolved once, by :attr:`Outbound.resolver`;
2. every address it resolves to must be globally routable (:meth:`Outbound.permitted`):
   loopback, private (RFC 1918, RFC 4193), link-local (cloud metadata at 169.254.169.254),
   shared (RFC 6598), reserved, unspecified and multicast addresses are refused, and so are
   IPv4-mapped, NAT64 (RFC 6052) and 6to4 IPv6 addresses that embed one of those, unless the
   address itself is inside ``PORTAL_OUTBOUND_ALLOWED_NETWORKS``;
3. the connection goes to the first checked address itself, never to the name again, so a DNS
   answer that changes between the check and the connect (DNS rebinding) has no window. TLS
   still verifies the certificate against the *name*: SNI (``server_hostname``) and the
   hostname check (``assert_hostname``) use it, and so does the ``Host`` header.

:func:`pinned` serves the proxy (urllib3); :class:`PinnedAdapter`, mounted on a
``requests.Session`` by :meth:`Outbound.mount`, serves identity lookups and Authlib's OAuth 2.0
sessions. Apps whose hosts are all fixed in the catalog take none of this (:func:`user_chosen`).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.utils import select_proxy

if TYPE_CHECKING:
    from .catalog import App


log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: ``resolver(host)`` -> the addresses ``host`` resolves to (IPv4 or IPv6 literals, in the
#: order to try); raises :class:`OSError` when it does not resolve.
Resolver = Callable[[str], Sequence[str]]

#: NAT64 well-known prefix (RFC 6052 §2.1): the last 32 bits are an IPv4 address.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
#: Local-use NAT64 prefix (RFC 8215): never globally reachable.
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")


def system_resolver(host: str) -> list[str]:
    """The addresses ``host`` resolves to through the system resolver (``getaddrinfo``,
    TCP), in its order, without duplicates or IPv6 zone ids.

    :raises OSError: the name does not resolve (``socket.gaierror``).
    """
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except UnicodeError as exc:
        raise OSError(f"cannot encode host name: {exc}") from exc
    seen: list[str] = []
    for info in infos:
        address = str(info[4][0]).split("%", 1)[0]
        if address not in seen:
            seen.append(address)
    return seen


def user_chosen(app: App) -> bool:
    """True when some of ``app``'s URLs take their host from the end user (a ``hostname``
    account field): its outbound requests must go through :meth:`Outbound.pick`."""
    return any(spec.format == "hostname" for spec in app.account_fields)


def refused_message(app: App) -> str:
    """What the end user is told when ``app``'s host is refused (connect page, proxy 403)."""
    return f"{app.title}: the host of this account points to a private network address."


class HostRefused(requests.ConnectionError):
    """The host resolves to an address that is not globally routable (nothing was sent).

    A :class:`requests.ConnectionError`, so code that handles ``requests`` failures never lets
    it escape; callers that can say more catch it first.
    """

    def __init__(self, host: str, address: str) -> None:
        super().__init__(f"{host} resolves to a non-public address")
        self.host = host
        self.address = address


class HostUnresolved(requests.ConnectionError):
    """The host name does not resolve (nothing was sent)."""


def _embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries: IPv4-mapped (``::ffff:a.b.c.d``), NAT64
    well-known prefix (RFC 6052), 6to4 (RFC 3056)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address in _NAT64:
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    if address.sixtofour is not None:
        return [address.sixtofour]
    return []


def _global_unicast(address: IPAddress) -> bool:
    return not (
        not address.is_global
        or address.is_private
        or address.is_multicast
        or address.is_reserved
        or address.is_loopback
        or address.is_link_local
        or address.is_unspecified
        or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local)
        or address in _NAT64_LOCAL
    )


def is_public(address: IPAddress) -> bool:
    """True when ``address`` is globally routable unicast (IANA special-purpose address
    registries, RFC 6890). An IPv4-mapped or NAT64 (RFC 6052) address is judged by the IPv4
    address it carries; a 6to4 one (RFC 3056) by both."""
    embedded = _embedded_ipv4(address)
    if isinstance(address, ipaddress.IPv6Address) and (
        address.ipv4_mapped is not None or address in _NAT64
    ):
        return _global_unicast(embedded[0])
    return all(_global_unicast(a) for a in (address, *embedded))


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """``PORTAL_OUTBOUND_ALLOWED_NETWORKS`` entries (``"127.0.0.1/32"``, ``"10.20.0.0/16"``,
    ``"fd00:1::/64"``) as networks.

    :raises ValueError: an entry is not a network (host bits set included), naming it.
    """
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(str(value), strict=True))
        except ValueError as exc:
            raise ValueError(
                f"PORTAL_OUTBOUND_ALLOWED_NETWORKS: {value!r} is not a network ({exc})"
            ) from None
    return tuple(networks)


class Outbound:
    """The outbound policy of one portal: which addresses an end-user-chosen host may resolve
    to, and the resolver asked (swap :attr:`resolver` to control name resolution in tests).

    :param allowed_networks: networks reachable although not public (a self-hosted server on
        the operator's own network, or loopback in tests).
    :param resolver: see :data:`Resolver`; default :func:`system_resolver`.
    """

    def __init__(
        self, allowed_networks: Iterable[Network] = (), resolver: Resolver | None = None
    ) -> None:
        self.allowed_networks = tuple(allowed_networks)
        self.resolver: Resolver = resolver or system_resolver

    @classmethod
    def from_config(cls, config: Any) -> Outbound:
        """The policy of ``config`` (``PORTAL_OUTBOUND_ALLOWED_NETWORKS``).

        :raises ValueError: an entry is not a network.
        """
        return cls(parse_networks(config.get("PORTAL_OUTBOUND_ALLOWED_NETWORKS") or ()))

    def permitted(self, address: str) -> bool:
        """True when a connection to ``address`` (an IP literal, zone id allowed) is allowed:
        it is public (:func:`is_public`), or it is itself inside an allowed network (an
        IPv4-mapped ``::ffff:127.0.0.1`` is not inside ``127.0.0.1/32``).

        :raises ValueError: ``address`` is not an IP literal.
        """
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        return is_public(ip) or any(
            ip in network for network in self.allowed_networks if ip.version == network.version
        )

    def pick(self, host: str) -> str:
        """Resolve ``host`` once and return the address to connect to (the first one), after
        checking every address it resolved to. An IP literal is checked as it is.

        :raises HostRefused: some address is not permitted (:meth:`permitted`).
        :raises HostUnresolved: the name does not resolve.
        """
        name = host.strip("[]")
        try:
            ipaddress.ip_address(name.split("%", 1)[0])
        except ValueError:
            try:
                addresses = [str(a) for a in self.resolver(name)]
            except OSError as exc:
                raise HostUnresolved(f"{host} does not resolve") from exc
        else:
            addresses = [name]
        if not addresses:
            raise HostUnresolved(f"{host} does not resolve")
        for address in addresses:
            try:
                ok = self.permitted(address)
            except ValueError:
                ok = False
            if not ok:
                raise HostRefused(host, address)
        return addresses[0].split("%", 1)[0]

    def mount(self, session: requests.Session) -> requests.Session:
        """Mount :class:`PinnedAdapter` on ``session`` for ``http://`` and ``https://`` and stop
        it reading proxies and credentials from the environment (a proxy would resolve the
        name itself). Returns ``session``."""
        adapter = PinnedAdapter(self)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.trust_env = False
        return session

    def session(self) -> requests.Session:
        """A new ``requests.Session`` with :meth:`mount` applied."""
        return self.mount(requests.Session())


@dataclass(frozen=True)
class Pinned:
    """Where one request to an end-user-chosen host goes: ``address`` was checked for
    ``host`` (the name in the URL)."""

    host: str
    address: str


def host_header(scheme: str, host: str, port: int | None) -> str:
    """The ``Host`` header (RFC 9110 §7.2) for ``host``: the port only when not the scheme's
    default, IPv6 literals in brackets."""
    name = f"[{host}]" if ":" in host else host
    default = 443 if scheme == "https" else 80
    return name if port in (None, default) else f"{name}:{port}"


def pool_kwargs(scheme: str, host: str) -> dict[str, Any]:
    """urllib3 pool keyword arguments that make a pool opened to a checked *address* still
    speak TLS to ``host``: SNI and the certificate's name check use the name (RFC 6066 §3,
    RFC 6125). Empty for plain ``http``."""
    if scheme != "https":
        return {}
    return {"server_hostname": host, "assert_hostname": host}


def pinned_pool(
    manager: urllib3.PoolManager, scheme: str, pin: Pinned, port: int | None
) -> urllib3.HTTPConnectionPool:
    """The connection pool of ``manager`` for ``pin.address`` speaking to ``pin.host``.
    urllib3 keys pools by address, port, SNI name and checked name, so keep-alive
    connections are reused only for the same checked address."""
    return manager.connection_from_host(
        pin.address, port=port, scheme=scheme, pool_kwargs=pool_kwargs(scheme, pin.host)
    )


class PinnedAdapter(HTTPAdapter):
    """A ``requests`` transport adapter that resolves each request's host once through
    :meth:`Outbound.pick` and connects to that address, with ``Host``, SNI and the
    certificate check on the name. Every request of the session (redirect hops included)
    is checked; a proxy is refused (it would resolve the name itself).

    :raises HostRefused: from ``send`` when the host resolves to a non-permitted address.
    :raises HostUnresolved: from ``send`` when it does not resolve.
    """

    def __init__(self, outbound: Outbound) -> None:
        super().__init__()
        self.outbound = outbound

    def get_connection_with_tls_context(
        self,
        request: requests.PreparedRequest,
        verify: Any,
        proxies: Mapping[str, str] | None = None,
        cert: Any = None,
    ) -> urllib3.HTTPConnectionPool:
        """The pool for the checked address of ``request``'s host (see the class)."""
        if select_proxy(request.url or "", proxies):
            raise requests.ConnectionError("an end-user-chosen host is never reached by proxy")
        host_params, tls = self.build_connection_pool_key_attributes(request, verify, cert)
        scheme, host, port = host_params["scheme"], host_params["host"], host_params["port"]
        address = self.outbound.pick(host)
        request.headers["Host"] = host_header(scheme, host, port)
        kwargs: dict[str, Any] = {**tls, **pool_kwargs(scheme, host)}
        pool: urllib3.HTTPConnectionPool = self.poolmanager.connection_from_host(
            address, port=port, scheme=scheme, pool_kwargs=kwargs
        )
        return pool


def url_host(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of an absolute URL (host lower case, no brackets)."""
    parts = urlsplit(url)
    return parts.scheme, parts.hostname or "", parts.port

"""Which network addresses Ferry may connect to, and which hosts are this machine.

URLs come from Git (Flux sources, HelmRepository and OCIRepository URLs) and from Helm indexes
(chart archive URLs): anyone who can push to the repository or serve an index chooses them.
Link-local addresses are refused wherever a name leads: cloud metadata services answer there
(169.254.169.254, AWS's IPv6 fd00:ec2::254) and hand out the machine's own cloud credentials.
"""
from __future__ import annotations

import ipaddress
import socket
from typing import Optional

FORBIDDEN_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "169.254.0.0/16",  # IPv4 link-local: EC2, GCP, Azure, OpenStack metadata
    "fe80::/10",  # IPv6 link-local
    "fd00:ec2::254/128",  # EC2's IPv6 metadata endpoint (a unique-local address)
))


def forbidden(address: str) -> bool:
    """True for a link-local or metadata address (IPv4-mapped IPv6 ones too)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0].strip("[]"))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in FORBIDDEN_NETWORKS)


def forbidden_address_of(host: str, port: Optional[int] = None) -> Optional[str]:
    """The first link-local or metadata address ``host`` is or resolves to, or None (also when it
    does not resolve: the connection then fails on its own, with its own message)."""
    if not host:
        return None
    if forbidden(host):
        return host.strip("[]")
    try:
        found = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None
    return next((info[4][0] for info in found if forbidden(info[4][0])), None)


def refusal(host: str, address: str) -> str:
    """The one line said when a connection is refused for its address."""
    named = host if host.strip("[]") == address else f"{host} ({address})"
    return (f"Ferry does not connect to {named}: a link-local address, where cloud metadata "
            "services answer. Point the source at the registry's or repository's real address.")


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1): a host on this machine, the one
    place the settings may let credentials travel over plain HTTP without saying so twice."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False

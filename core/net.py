"""Which hosts count as this machine: servers the project starts listen there only (paper broker, dashboard)."""
from __future__ import annotations

import ipaddress
from urllib.parse import urlparse


def is_loopback(host: str) -> bool:
    """"localhost" or a loopback address (127.0.0.0/8, ::1); a name that might resolve elsewhere is not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """The URL names this machine (is_loopback on its host; [::1] as written in a URL counts)."""
    return is_loopback(urlparse(url).hostname or "")

"""Host names every layer asks about (a leaf: imports no layer)."""

from __future__ import annotations

import ipaddress


def is_loopback_name(host: str) -> bool:
    """Loopback IPs (127/8, ::1) and exactly ``localhost``."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host.lower() == "localhost"

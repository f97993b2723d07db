"""Whether a server about to listen beyond loopback still uses the committed demo credentials.

The demo's passwords (docker-compose.yml, deploy/README.md) are public and all start with ``demo-``. On
127.0.0.1 that is harmless; on an interface other machines reach it hands them the database and the broker.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

DEMO_PREFIX = "demo-"


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def demo_credentials_warning(host: str, urls: dict[str, str | None]) -> str | None:
    """One plain line when ``host`` is not loopback and a URL of ``urls`` (name → URL) carries a demo
    password; None otherwise."""
    if is_loopback(host):
        return None
    exposed = [name for name, url in urls.items() if url and (urlsplit(url).password or "").startswith(DEMO_PREFIX)]
    if not exposed:
        return None
    return (
        f"warning: listening on {host} with the public demo password in {', '.join(exposed)}; anyone who "
        "reaches this machine can use them. Change every demo credential first (deploy/README.md, "
        '"Changing the demo credentials"), or listen on 127.0.0.1.'
    )

"""Where the official Cellucid web build comes from, and the error type of everything
about it (a leaf: settings validate the source without importing the server).

The source is an absolute http(s) URL without trailing slash, query, fragment or
credentials, and plain http only for a loopback host (an on-path attacker could
otherwise rewrite both the assets and the hashes that vouch for them): cellucid
0.9.5's rule (``web_cache.py``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from cellucid_desktop.hosts import is_loopback_name

DEFAULT_SOURCE_URL = "https://www.cellucid.com"


class WebAppError(Exception):
    """Anything that keeps the web app from being fetched or served.

    ``str(error)`` is one sentence for the user: what happened and what to do.
    """


class SourceURLError(WebAppError, ValueError):
    """A web-app source URL the settings must refuse."""


def default_source_url() -> str:
    """Where the official web build is published (the settings' default)."""
    return DEFAULT_SOURCE_URL


def validate_source_url(url: str) -> str:
    """Return ``url`` unchanged if it may serve the web build; else SourceURLError."""
    if not isinstance(url, str) or not url or url != url.strip() or any(c.isspace() for c in url):
        raise SourceURLError("The web app source must be a URL without spaces, "
                             "such as https://www.cellucid.com.")
    if url.endswith("/"):
        raise SourceURLError(f"Remove the trailing '/' from the web app source {url!r}.")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port
    except ValueError:
        raise SourceURLError(f"The web app source {url!r} has an invalid host or port.") from None
    if parts.scheme not in ("http", "https") or not host:
        raise SourceURLError(f"The web app source {url!r} must be an absolute http(s) URL, "
                             "such as https://www.cellucid.com.")
    if parts.username is not None or parts.password is not None:
        raise SourceURLError("The web app source must not contain a user name or password.")
    if parts.query or parts.fragment:
        raise SourceURLError(f"Remove the '?...' or '#...' part from the web app source {url!r}.")
    if parts.scheme == "http" and not is_loopback_name(host):
        raise SourceURLError(f"The web app source must use https (plain http is allowed only "
                             f"for this computer, such as http://127.0.0.1:4173), not {url!r}.")
    return url

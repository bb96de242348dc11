"""Which POSTs the data API accepts: from the page's own origin, with a JSON body.

A page on another site can make a browser send a POST to our loopback port. Browsers
label every POST with the page's ``Origin``, so a POST whose Origin is not the origin
the request is addressed to (its ``Host``, already checked by the Host guard) is
refused, and so is ``Origin: null`` (sandboxed frames, files). Requiring
``Content-Type: application/json`` for a body also makes any cross-origin attempt need a
CORS preflight, which our CORS answer does not allow for POST. Programs that send no
Origin (the command line, tests) are let through: they can read the user's files anyway.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from cellucid_desktop.server.security import normalize_host_name, parse_host_header


def same_origin(origin: str | None, host: str | None) -> bool:
    """Whether a request's ``Origin`` (None when absent) is the origin of ``Host``."""
    if origin is None:
        return True
    try:
        parts = urlsplit(origin)
        origin_port = parts.port
    except ValueError:
        return False
    if parts.scheme != "http" or not parts.hostname or host is None:
        return False  # our servers speak plain http on loopback; "null" has no scheme
    parsed = parse_host_header(host)
    if parsed is None:
        return False
    host_name, host_port = parsed
    return (normalize_host_name(parts.hostname) == normalize_host_name(host_name)
            and (origin_port or 80) == (host_port or 80))


def post_refusal(method: str, origin: str | None, host: str | None, content_type: str,
                 has_body: bool) -> tuple[int, str] | None:
    """(status, sentence) when a write request must be refused, else None."""
    if method != "POST":
        return None
    if not same_origin(origin, host):
        return 403, ("This request came from another web page; the data API accepts "
                     "changes only from its own viewer")
    if has_body and content_type.split(";")[0].strip().lower() != "application/json":
        return 415, "Send the request body as JSON (Content-Type: application/json)"
    return None

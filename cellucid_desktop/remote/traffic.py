"""Who pays for bytes read from a remote: the request that caused the read.

A data API request reads remote bytes in its own thread (h5py through RangeFile) or,
for Zarr, in zarr's event loop and worker threads, which run the request's reads in a
copy of its context. A context variable therefore follows the request into every one
of them, where a thread-local would not: ``counting()`` opens an account for the
request, ``charge(n)`` adds to the account of whatever request the read serves (a
background gene-index build has none and is charged to nobody).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_account: ContextVar[list[int] | None] = ContextVar("cellucid_remote_bytes", default=None)


@contextmanager
def counting() -> Iterator[list[int]]:
    """An account (``[bytes]``) charged with every remote read made inside the block."""
    account = [0]
    token = _account.set(account)
    try:
        yield account
    finally:
        _account.reset(token)


def open_account() -> tuple[list[int], object]:
    """An account set for the rest of the current context; ``close_account(token)``
    ends it (for a request whose start and end are separate hooks)."""
    account = [0]
    return account, _account.set(account)


def close_account(token: object) -> None:
    _account.reset(token)  # type: ignore[arg-type]


def charge(count: int) -> None:
    """Add ``count`` bytes to the current request's account, if any."""
    account = _account.get()
    if account is not None:
        account[0] += count

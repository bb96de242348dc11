"""Errors whose message is meant for the user, not for a traceback."""

import zipfile

# Everything h5py, zarr, zipfile or a codec raise on a damaged store: missing or
# unreadable keys, bad JSON, chunks that do not decompress (readers turn these into
# DatasetError sentences).
READ_ERRORS = (KeyError, ValueError, TypeError, OSError, RuntimeError, EOFError,
               zipfile.BadZipFile)


class DatasetError(Exception):
    """A dataset cannot be opened or read; ``str(err)`` says what and what to do."""


class TransportError(OSError):
    """Reading the bytes failed on the way (a remote server, a tunnel); ``str(err)`` is
    a sentence for the user, so readers pass it on rather than blaming the data."""


class SourceUnreachable(TransportError):
    """The bytes cannot be reached right now (a remote file behind a tunnel that is down
    or reconnecting). Not a damaged file: the same read can succeed later, so readers
    let it through unchanged (the data API answers 502) instead of a DatasetError."""

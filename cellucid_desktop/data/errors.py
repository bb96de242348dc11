"""Errors whose message is meant for the user, not for a traceback."""


class DatasetError(Exception):
    """A dataset cannot be opened or read; ``str(err)`` says what and what to do."""


class SourceUnreachable(OSError):
    """The bytes of a dataset cannot be reached right now (a remote file behind a tunnel
    that is down or reconnecting). Not a damaged file: the same read can succeed later,
    so it is never turned into a DatasetError."""

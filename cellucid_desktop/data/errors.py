"""Errors whose message is meant for the user, not for a traceback."""


class DatasetError(Exception):
    """A dataset cannot be opened or read; ``str(err)`` says what and what to do."""

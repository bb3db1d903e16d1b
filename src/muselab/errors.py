"""One exception type for errors a user can act on.

The CLI turns a :class:`MuselabError` into one clear line on stderr and a non-zero
exit code; library callers can catch it like any other exception.
"""


class MuselabError(Exception):
    """An error caused by user input (a path, an argument, a config value).

    The message must name the offending thing and say what to do about it.
    """


class ConfigError(MuselabError, ValueError):
    """A configuration value is missing, of the wrong type or out of range."""


class DataError(MuselabError):
    """A data set cannot be found, fetched, decoded or is empty."""

"""The errors a user can act on, at the bottom of the package: every layer raises them and the
command line prints them as one ``error: ...`` line (exit status 2) instead of a traceback.

This module imports nothing from the package, so any module may import it.
"""

from __future__ import annotations


class UsageError(Exception):
    """A problem the user can fix from the message alone."""


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or holds an invalid value."""


class OptionError(ConfigError):
    """An option value is out of range; the message names the option."""


class DataFormatError(ValueError):
    """A data file cannot be read; the message names the file and, where known, the line."""


# What ``main`` reports without a traceback.
USER_ERRORS = (UsageError, ConfigError, DataFormatError)

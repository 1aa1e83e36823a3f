"""The errors a user can cause: bad data, a bad option, an edited bundle, a missing model.

Each is a :class:`UserError`, whose message is one line naming the file (and line) or the
option at fault; the CLI prints that line and exits with code 2. Anything else that
escapes is a bug: the CLI shows its traceback and asks for a report.
"""

from __future__ import annotations


class UserError(Exception):
    """An error in what the user gave (data, options, files); the message says where."""


class BundleError(UserError, ValueError):
    """A bundle folder that cannot be loaded: the message names the file and the key."""


__all__ = ["BundleError", "UserError"]

"""User-facing errors.

Raise :class:`UserError` for every mistake a user can make (a missing file, a bad key, NaN data,
shapes that disagree, an unknown id, a bad option). The CLI prints it as one line and exits with
code 2; nothing on disk is changed. Internal bugs must *not* use it, so they keep their traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input, reported as one line without a traceback."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))  # always one line

"""The one exception type for mistakes a user can fix (bad name, bad value, missing data).

The CLI turns it into a single line on stderr and a non-zero exit; anything else is a bug and
keeps its traceback.
"""


class LitexpError(Exception):
    """A user-facing error: the message says what is wrong and what to do."""


class DivergedError(LitexpError):
    """Training produced a non-finite loss (NaN or inf): the run stops and says at which step."""

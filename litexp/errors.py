"""The one exception type for mistakes a user can fix (bad name, bad value, missing data).

The CLI turns it into a single line on stderr and a non-zero exit; anything else is a bug and
keeps its traceback.
"""


class LitexpError(Exception):
    """A user-facing error: the message says what is wrong and what to do."""


class DivergedError(LitexpError):
    """Training produced a non-finite loss (NaN or inf): the run stops and says at which step."""


class LitexpWarning(UserWarning):
    """A notice the user may act on; the CLI prints it as ``litexp: warning: ...``."""


def warn(message: str) -> None:
    """Warn on global rank 0 only (under DDP every rank runs the same code and would repeat it)."""
    import warnings

    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    if getattr(rank_zero_only, "rank", 0) == 0:
        warnings.warn(message, LitexpWarning, stacklevel=2)

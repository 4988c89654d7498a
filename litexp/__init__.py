"""What every litexp package shares and none of them owns: the user-facing error type.

``datamodules`` and ``lit_models`` both raise :class:`LitexpError`; keeping it here lets data code
raise it without importing the model package (and its networks), and the reverse.
"""

from litexp.errors import DivergedError, LitexpError

__all__ = ["DivergedError", "LitexpError"]

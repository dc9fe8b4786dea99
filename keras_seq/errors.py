"""Errors and warnings that keras-seq shows to its users."""


class KerasSeqError(ValueError):
    """A mistake in what the user asked for or supplied.

    The message is one line: what was wrong, what was expected, what to do.
    The CLI prints it without a traceback and exits with a non-zero status.
    """


class DataWarning(UserWarning):
    """Something in the data was repaired (for example unsorted dates)."""

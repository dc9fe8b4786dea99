"""Errors and warnings that keras-seq shows to its users."""


class KerasSeqError(ValueError):
    """A mistake in what the user asked for or supplied.

    The message is one line: what was wrong, what was expected, what to do.
    The CLI prints it without a traceback and exits with a non-zero status.
    """


class RunInterrupted(KerasSeqError):
    """Ctrl-C stopped training; the run folder holds what is needed to resume it.

    The CLI exits with status 130, as a shell does for an interrupted command.
    """

    exit_code = 130


class DataWarning(UserWarning):
    """Something in the data was repaired (for example unsorted dates)."""


class FolderWarning(UserWarning):
    """Something found in an output folder needs the user's attention (a killed command's leftover)."""


class RunWarning(UserWarning):
    """An option was adjusted to what this machine can run (more worker processes than cores), or a finished run
    could not also be logged where it was asked to be (an MLflow server that failed)."""


def is_control(character: str) -> bool:
    """A control character (a newline, an escape, DEL), which no one-line text keeps."""
    return ord(character) < 32 or character == "\x7f"


def has_control_characters(text: str) -> bool:
    return any(map(is_control, text))


def one_line(text: str, limit: int = 1000) -> str:
    """`text` as one line of at most about `limit` characters: control characters become spaces, and a longer
    text keeps its start and end around a marked cut.

    Example:
    >>> one_line("a\\nb"), len(one_line("x" * 5000)) < 1100
    ('a b', True)
    """
    flat = "".join(" " if is_control(c) else c for c in text)
    if len(flat) <= limit:
        return flat
    return f"{flat[: limit - 200]} [... {len(flat) - limit + 50:,} characters cut ...] {flat[-150:]}"


def mask_credentials(text: str) -> str:
    """`text` with the password of every URL in it (`scheme://user:password@host`) masked.

    Example:
    >>> mask_credentials("postgresql://alice:s3cret@db:5432/x failed")
    'postgresql://alice:***@db:5432/x failed'
    """
    import re

    return re.sub(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name if it has none), to quote in one-line errors."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


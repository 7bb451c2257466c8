"""Exceptions raised by napari-spine. Every message names the file and the problem."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["ExportError", "GeometryError", "LabelMapError", "SpineIOError", "reading"]


class SpineIOError(ValueError):
    """A file cannot be read as what it was asked to be (message starts with the path).

    The one family of errors for everything a user can cause: bad, corrupt or hostile
    files, unwritable folders, untrusted models. Every subclass names the file."""


class GeometryError(SpineIOError):
    """A file's geometry is unusable (NaN/singular affine, wrong dimensionality, grid mismatch)."""


class LabelMapError(SpineIOError):
    """A label id has no entry in the label scheme, or a structure cannot be written in it."""


class ExportError(SpineIOError, OSError):
    """An export could not be written or failed verification; nothing was left at the target.

    Also an ``OSError``: it is about the file system as much as about the data."""


@contextmanager
def reading(where: object, action: str = "read") -> Iterator[None]:
    """Give anything that fails while ``where`` is read one error type, naming it.

    The readers raise :class:`SpineIOError` for every problem they know; this is the net
    at the boundary for the ones nobody foresaw in a hostile or broken file (a parser's
    own exception, an allocation the file asks for): the user gets the file and the
    problem, never a traceback from deep inside a library.
    """
    try:
        yield
    except SpineIOError:
        raise
    except MemoryError:
        raise SpineIOError(f"{where}: cannot {action}: it needs more memory than there is "
                           "(a corrupt size field, or a file too large for this machine)") from None
    except OSError as exc:
        detail = exc.strerror or str(exc) or type(exc).__name__
        name = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(where) else ""
        raise SpineIOError(f"{where}: cannot {action}: {detail}{name}") from exc
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except Exception as exc:  # noqa: BLE001 - this is the net for the unforeseen
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise SpineIOError(f"{where}: cannot {action} ({type(exc).__name__}"
                           + (f": {text[:300]}" if text else "") + ")") from exc

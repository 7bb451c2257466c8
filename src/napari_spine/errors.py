"""Exceptions raised by napari-spine. Every message names the file and the problem."""

from __future__ import annotations

__all__ = ["ExportError", "GeometryError", "LabelMapError", "SpineIOError"]


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

"""The one allow-list for unpickling: numpy arrays, scalars, dtypes and plain containers.

Pickles run code. Every file napari-spine unpickles — dataset ``.pt`` slices through
``torch.load(weights_only=True)``, nnU-Net v1 ``.pkl`` plans through :func:`restricted_load` —
may name only the globals listed here; anything else is refused before it is resolved, so
nothing in the file runs.
"""

from __future__ import annotations

import collections
import importlib
import pickle
from functools import lru_cache
from typing import IO, Any

import numpy as np

__all__ = ["numpy_globals", "pickle_globals", "restricted_load", "torch_safe_globals"]

_DTYPES = (np.bool_, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32,
           np.int64, np.uint64, np.float16, np.float32, np.float64)


def _multiarray():
    """numpy's ``multiarray`` module: ``numpy._core`` from numpy 2, ``numpy.core`` before."""
    try:
        return importlib.import_module("numpy._core.multiarray")
    except ImportError:  # numpy < 2
        return importlib.import_module("numpy.core.multiarray")


@lru_cache(maxsize=1)
def numpy_globals() -> dict[tuple[str, str], Any]:
    """``(module, name) -> object`` for numpy's array, scalar and dtype reconstruction.

    Both spellings of the multiarray module are listed: pickles written under numpy 1 say
    ``numpy.core.multiarray``, those written under numpy 2 say ``numpy._core.multiarray``.

    >>> ("numpy", "ndarray") in numpy_globals()
    True
    """
    ma = _multiarray()
    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray,
                                           ("numpy", "dtype"): np.dtype}
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(mod, "_reconstruct")] = ma._reconstruct
        allowed[(mod, "scalar")] = ma.scalar
    for t in _DTYPES:
        cls = type(np.dtype(t))
        allowed[("numpy.dtypes", cls.__name__)] = cls
    return allowed


@lru_cache(maxsize=1)
def pickle_globals() -> dict[tuple[str, str], Any]:
    """:func:`numpy_globals` plus the plain containers a plain pickle may hold."""
    return {**numpy_globals(),
            ("collections", "OrderedDict"): collections.OrderedDict,
            ("collections", "defaultdict"): collections.defaultdict,
            ("builtins", "set"): set,
            ("builtins", "frozenset"): frozenset,
            ("builtins", "slice"): slice}


def torch_safe_globals() -> list:
    """:func:`numpy_globals` in the form ``torch.serialization.safe_globals`` takes.

    Classes are given as themselves (torch derives their names); functions as
    ``(function, "module.name")`` pairs so that both multiarray spellings resolve.
    """
    out: list = []
    for (mod, name), obj in numpy_globals().items():
        if isinstance(obj, type):
            if obj not in out:
                out.append(obj)
        else:
            out.append((obj, f"{mod}.{name}"))
    return out


class _Restricted(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return pickle_globals()[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"{module}.{name}") from None


def restricted_load(f: IO[bytes]) -> Any:
    """Unpickle ``f`` admitting only :func:`pickle_globals`.

    Raises :class:`pickle.UnpicklingError` whose text is the refused global's full name.

    >>> import io, pickle
    >>> restricted_load(io.BytesIO(pickle.dumps({"a": np.arange(3)})))["a"].tolist()
    [0, 1, 2]
    >>> restricted_load(io.BytesIO(pickle.dumps(print)))
    Traceback (most recent call last):
    ...
    _pickle.UnpicklingError: builtins.print
    """
    return _Restricted(f).load()

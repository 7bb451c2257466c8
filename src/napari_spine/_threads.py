"""One process-wide thread pool for the hot paths that split a volume into slabs.

The codecs (zlib-ng, libdeflate) and numpy's reductions release the GIL, so threads use
every core without copying the volume into worker processes. Work that runs inside a
pool task must not submit to the pool and wait (that could exhaust the workers);
:func:`map_slabs` runs inline when called from a pool thread.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["cores", "map_slabs"]

T = TypeVar("T")
R = TypeVar("R")

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_PREFIX = "napari-spine-slab"


def cores() -> int:
    """Cores this process may run on (the CPU affinity, not the machine's count);
    ``NAPARI_SPINE_THREADS`` caps it."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    cap = os.environ.get("NAPARI_SPINE_THREADS", "")
    return max(1, min(n, int(cap))) if cap.isdigit() and int(cap) > 0 else max(1, n)


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=min(cores(), 16), thread_name_prefix=_PREFIX)
        return _pool


def map_slabs(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``[fn(x) for x in items]``, the items run side by side on the pool; results in
    order; the first exception is raised after every task has ended (none is left
    running on shared buffers)."""
    items = list(items)
    if len(items) < 2 or cores() < 2 or threading.current_thread().name.startswith(_PREFIX):
        return [fn(x) for x in items]
    futures = [_executor().submit(fn, x) for x in items]
    error: BaseException | None = None
    out = []
    for f in futures:
        try:
            out.append(f.result())
        except BaseException as exc:  # noqa: BLE001 - re-raised below, after the others end
            error = error or exc
    if error is not None:
        raise error
    return out

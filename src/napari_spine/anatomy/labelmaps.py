"""Dataset label schemes: native label ids <-> canonical anatomy ids.

Each scheme is a JSON data file in ``label_maps/`` (``to_canonical``, ``from_canonical``,
``unmapped`` policy, native names). Mapping is a lookup-table gather, one pass over the
volume, and never guesses: an id with no entry is an error that names the file and the
ids, unless the scheme declares that unknown ids are background (TotalSegmentator's
organ classes, for example).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType

import numpy as np

from ..errors import LabelMapError
from . import ontology

__all__ = ["LabelMap", "available_schemes", "get_label_map", "label_map_from_names", "present_ids",
           "register_label_map"]


@dataclass(frozen=True)
class LabelMap:
    """A native label scheme and its translation into canonical ids."""

    name: str
    description: str
    to_canonical: Mapping[int, int]
    from_canonical: Mapping[int, int]
    unmapped: str = "error"  # or "background"
    native_names: Mapping[int, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    #: where the names come from: "file header", "sidecar", "file names" (a folder of
    #: masks), "dataset" (a dataset's documented scheme) or "scheme"
    source: str = "scheme"

    def to_canonical_array(self, labels: np.ndarray, source: str | Path = "<array>",
                           ids: np.ndarray | None = None) -> np.ndarray:
        """Map a native label array to canonical ids, returned as ``uint8``.

        ``ids`` (the sorted ids present, if the caller already counted them) saves a pass.
        Raises :class:`LabelMapError` naming ``source`` and the ids without an entry.
        """
        ids = present_ids(labels) if ids is None else np.asarray(ids)
        known = set(self.to_canonical) | {0}
        unknown = [int(i) for i in ids if int(i) not in known]
        if unknown and self.unmapped != "background":
            raise LabelMapError(
                f"{source}: label id(s) {_fmt_ids(unknown)} have no entry in the "
                f"'{self.name}' label map ({self.description}); choose the file's scheme "
                f"(--scheme NAME, label_scheme=, or the Spine case panel; known: "
                f"{', '.join(available_schemes())}) or name the ids in a <stem>.json sidecar"
            )
        if labels.dtype == np.uint8 and all(self.to_canonical.get(int(i), 0) == i for i in ids if i):
            return labels  # every present id maps to itself (VerSe, CTSpine1K): no copy
        # mutation-equivalent: a longer table than needed maps the same
        size = int(max(ids.max(initial=0), max(self.to_canonical, default=0))) + 1
        # mutation-equivalent: either path maps alike (the threshold bounds the table's memory)
        if size > 1 << 16:  # a huge id (2**40) must not become a 1 TiB lookup table
            values = np.array([self.to_canonical.get(int(i), 0) for i in ids], dtype=np.uint8)
            return values[np.searchsorted(ids, labels)]
        lut = _lut(self.to_canonical, size, np.uint8)
        return lut[_as_index(labels)]

    def from_canonical_array(
        self,
        labels: np.ndarray,
        dtype: np.dtype | None = None,
        target: str | Path = "<array>",
        ids: np.ndarray | None = None,
    ) -> np.ndarray:
        """Map canonical ids back to this scheme (smallest fitting unsigned dtype).

        ``ids`` (the ids present, if the caller already counted them) saves a pass.
        """
        ids = present_ids(labels) if ids is None else np.asarray(ids)
        unknown = [int(i) for i in ids if i != 0 and int(i) not in self.from_canonical]
        if unknown:
            names = ", ".join(f"{i} ({ontology.name_of(i)})" for i in unknown)
            raise LabelMapError(
                f"{target}: structure(s) {names} cannot be written in the '{self.name}' "
                "label scheme (no native id); export with scheme='canonical' instead"
            )
        top = max(self.from_canonical.values(), default=0)  # mutation-equivalent[0 -> 1]: an empty table
        out_dtype = np.dtype(dtype) if dtype is not None else smallest_uint(top)
        if labels.dtype == out_dtype and all(self.from_canonical.get(int(i)) == i for i in ids if i):
            return labels
        # mutation-equivalent: anatomy ids are below 256 and unknown ones were refused above
        lut = _lut(self.from_canonical, max(int(ids.max(initial=0)), 255) + 1, out_dtype)
        return lut[_as_index(labels)]


def _lut(table: Mapping[int, int], size: int, dtype) -> np.ndarray:
    """Lookup table of ``size`` entries: ``table``'s ids mapped, everything else to 0."""
    lut = np.zeros(size, dtype=dtype)
    for k, v in table.items():
        if 0 < k < size:  # mutation-equivalent[Lt -> LtE]: no table maps id 0
            lut[k] = v
    return lut


def smallest_uint(max_value: int) -> np.dtype:
    """The smallest unsigned integer dtype that holds ``max_value``."""
    for dt in (np.uint8, np.uint16, np.uint32):
        if max_value <= np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.uint64)


def _as_index(labels: np.ndarray) -> np.ndarray:
    # mutation-equivalent[or -> and]: a copy as int64 indexes alike
    if labels.dtype.kind == "u" or labels.dtype.kind == "i":
        return labels
    return labels.astype(np.int64)


def _fmt_ids(ids: list[int]) -> str:
    if len(ids) > 12:
        return ", ".join(map(str, ids[:12])) + f", ... ({len(ids)} in all)"
    return ", ".join(map(str, ids))


def present_ids(labels: np.ndarray) -> np.ndarray:
    """Sorted label ids present in an integer array (0 included when present)."""
    if labels.size == 0:
        return np.zeros(0, dtype=np.int64)
    if labels.dtype in (np.uint8, np.uint16):
        counts = label_counts(labels)
        ids = sorted(counts)
        if sum(counts.values()) < labels.size:
            ids = [0, *ids]
        return np.asarray(ids, dtype=np.int64)
    return np.unique(labels)


_CHUNK = 1 << 22  # mutation-equivalent: a work size


_BLOCK = 512  # mutation-equivalent: words (4 KiB) per block of background skipped at once


def _nonzero_words(words: np.ndarray) -> np.ndarray:
    """Indices of the non-zero words, looking only inside blocks that hold any."""
    n = words.size // _BLOCK * _BLOCK
    blocks = (np.flatnonzero(np.bitwise_or.reduce(words[:n].reshape(n // _BLOCK, _BLOCK), axis=1)) if n
              else np.zeros(0, np.intp))
    inside = words[:n].reshape(n // _BLOCK, _BLOCK)[blocks]
    hits = np.nonzero(inside)
    head = blocks[hits[0]] * _BLOCK + hits[1]
    tail = np.flatnonzero(words[n:]) + n
    return np.concatenate([head, tail]) if tail.size else head


def flat_foreground(flat: np.ndarray) -> np.ndarray:
    """Indices of the non-zero voxels of a flat contiguous label array.

    For 1-byte labels the scan runs over 8-voxel words first, so that background (most
    of a segmentation) costs one comparison per 8 voxels; ``np.flatnonzero`` alone slows
    to a crawl once a few stray voxels spread over the whole volume.
    """
    flat = np.ascontiguousarray(flat).ravel()
    if flat.dtype.itemsize != 1:
        return np.flatnonzero(flat)
    n8 = flat.size - flat.size % 8
    words = flat[:n8].view(np.uint64)
    parts = []
    for start in range(0, words.size, _CHUNK):
        w = _nonzero_words(words[start : start + _CHUNK])
        if w.size:
            cand = ((w + start) * 8)[:, None] + np.arange(8)
            cand = cand.ravel()
            parts.append(cand[flat[cand] != 0])
    tail = np.flatnonzero(flat[n8:]) + n8
    if tail.size:
        parts.append(tail)
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def memory_order(a: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """How ``a`` lies in memory: the axes from the largest stride to the smallest, and which
    of those (positions in that order) run backwards."""
    perm = tuple(int(i) for i in np.argsort([-abs(st) for st in a.strides], kind="stable"))
    # mutation-equivalent: a stride of 0 (broadcast) reads the same flipped or not
    return perm, tuple(i for i, st in enumerate(a.transpose(perm).strides) if st < 0)


def in_memory_order(a: np.ndarray, like: np.ndarray | None = None) -> np.ndarray:
    """``a`` seen in the memory order of ``like`` (default ``a``, see :func:`memory_order`).
    A display-order case array (:func:`~napari_spine.load_case`) is a transpose and flip of
    its file's memory, so this view of it is C-contiguous."""
    perm, flips = memory_order(a if like is None else like)
    return a.transpose(perm)[tuple(slice(None, None, -1) if i in flips else slice(None) for i in range(a.ndim))]


def memory_view(a: np.ndarray) -> tuple[np.ndarray, tuple[int, ...], tuple[int, ...]] | None:
    """``(view, perm, flips)``: ``a`` in its memory order and how it got there; None when
    that view is not C-contiguous."""
    v = in_memory_order(a)
    return (v, *memory_order(a)) if v.flags.c_contiguous else None


def label_counts(labels: np.ndarray) -> dict[int, int]:
    """Voxel count per non-zero label id.

    For uint8/uint16 arrays this reads the memory as it lies, in slabs side by side (one
    per core), skips 4 KiB blocks of background after one OR-reduction each and counts only
    the non-zero words of the rest: segmentations are mostly background, so this is about
    20x faster than ``np.bincount`` over the whole volume and needs no full-size temporary.
    """
    if labels.dtype not in (np.uint8, np.uint16):
        ids, counts = np.unique(labels, return_counts=True)
        return {int(i): int(c) for i, c in zip(ids, counts) if i != 0}
    mem = memory_view(labels)  # counts do not depend on the order: read the memory as it lies
    flat = mem[0].ravel() if mem is not None else labels.ravel(order="K")
    total = _slab_counts(flat)
    return {int(i): int(total[i]) for i in np.flatnonzero(total)}


_SLAB = 1 << 24  # mutation-equivalent: voxels per core, at least, before counting is split


def _foreground_counts(flat: np.ndarray) -> np.ndarray:
    """``np.bincount`` of one flat 1- or 2-byte slab, bin 0 left empty: blocks of background
    are skipped after one OR-reduction each, and only the non-zero 8-byte words of the
    other blocks are counted."""
    flat = np.ascontiguousarray(flat).ravel()
    span = 8 * _BLOCK // flat.dtype.itemsize
    n = flat.size // span * span
    words = flat[:n].view(np.uint64).reshape(n // span, _BLOCK)
    inside = words[np.flatnonzero(np.bitwise_or.reduce(words, axis=1))].ravel()
    # mutation-equivalent[1 -> 2]: one more zero bin
    total = np.bincount(inside[inside != 0].view(flat.dtype), minlength=1)
    tail = flat[n:]
    tail = np.bincount(tail[tail != 0], minlength=1)  # mutation-equivalent[1 -> 2]: a zero bin
    if tail.size > total.size:  # mutation-equivalent: equal sizes add alike either way
        total, tail = tail, total
    total[:tail.size] += tail
    total[0] = 0
    return total


def _slab_counts(flat: np.ndarray) -> np.ndarray:
    """``np.bincount`` of the non-zero voxels of a flat array, slabs side by side."""
    from .._threads import cores, map_slabs

    n = max(1, min(cores(), flat.size // _SLAB))
    if n == 1:
        return _foreground_counts(flat)
    # mutation-equivalent: any slab edges count alike (4 KiB blocks only keep reads aligned)
    step = max(4096, -(-flat.size // n) // 4096 * 4096)
    slabs = [flat[a:a + step] for a in range(0, flat.size, step)]
    parts = map_slabs(_foreground_counts, slabs)
    total = np.zeros(max(p.size for p in parts), np.int64)
    for p in parts:
        total[:p.size] += p
    return total


def _load(path) -> LabelMap:
    raw = json.loads(path.read_text())

    def ints(d):
        return MappingProxyType({int(k): int(v) for k, v in d.items()})

    return LabelMap(
        name=raw["name"],
        description=raw.get("description", ""),
        to_canonical=ints(raw["to_canonical"]),
        from_canonical=ints(raw["from_canonical"]),
        unmapped=raw.get("unmapped", "error"),
        native_names=MappingProxyType({int(k): str(v) for k, v in raw.get("names", {}).items()}),
        aliases=tuple(raw.get("aliases", ())),
        source=raw.get("source", "scheme"),
    )


@cache
def _registry() -> Mapping[str, LabelMap]:
    out: dict[str, LabelMap] = {}
    for entry in resources.files("napari_spine.anatomy").joinpath("label_maps").iterdir():
        if entry.name.endswith(".json"):
            lm = _load(entry)
            out[lm.name] = lm
            for a in lm.aliases:
                out[a] = lm
    return MappingProxyType(out)


def available_schemes() -> tuple[str, ...]:
    """Names of every label scheme (the JSON files in ``label_maps/`` and registered ones)."""
    return tuple(sorted({lm.name for lm in _registry().values()}))


#: schemes made from the names a file carries (header label table, sidecar), by name
_FROM_NAMES: dict[str, LabelMap] = {}


def register_label_map(lm: LabelMap) -> str:
    """Make a scheme built at run time (from a file's own names) known by its name."""
    _FROM_NAMES[lm.name] = lm
    return lm.name


def label_map_from_names(names, present=(), source: str = "<labels>") -> LabelMap:
    """The scheme a file's own names define (:class:`~napari_spine.anatomy.labelnames.LabelNames`).

    Spine structures map to their anatomy ids; named structures outside the spine table
    (organs, ribs ...) are background in the anatomy view. An id present in the file that
    no name explains is a :class:`LabelMapError` naming it, so no structure is ever given
    a guessed spine name. Several native ids with one anatomy id (TotalSegmentator's
    ``sacrum`` and ``vertebrae_S1``) write back as the one present in the file.
    """
    import hashlib

    anatomy = names.anatomy_ids()
    unnamed = sorted(int(i) for i in present if int(i) and int(i) not in anatomy)
    if unnamed:
        raise LabelMapError(
            f"{source}: label id(s) {_fmt_ids(unnamed)} are not named by {names.where} "
            f"({names.source}); name them there or choose a scheme (--scheme, or the Spine case "
            "panel's scheme picker)")
    to_canonical = {k: v for k, v in anatomy.items() if v}
    present = {int(i) for i in present}
    from_canonical: dict[int, int] = {}
    for native, canon in sorted(to_canonical.items(), key=lambda kv: (kv[0] not in present, kv[0])):
        from_canonical.setdefault(canon, native)
    # mutation-equivalent[10 -> 11]: the digest's length only names the scheme
    digest = hashlib.sha256(json.dumps(sorted(names.names.items())).encode()).hexdigest()[:10]
    return LabelMap(
        name=f"names-{digest}",
        description=f"names from the {names.source} ({names.where})",
        to_canonical=MappingProxyType(to_canonical),
        from_canonical=MappingProxyType(from_canonical),
        unmapped="background",
        native_names=MappingProxyType(dict(names.names)),
        source=names.source,
    )


def get_label_map(name: str) -> LabelMap:
    """The label scheme called ``name`` (or one of its aliases, e.g. ``"tptbox"``)."""
    if name in _FROM_NAMES:
        return _FROM_NAMES[name]
    key = name.strip().lower().replace("-", "_")
    reg = _registry()
    if key in reg:
        return reg[key]
    if name in reg:
        return reg[name]
    raise LabelMapError(f"unknown label scheme {name!r}; known: {', '.join(available_schemes())}")

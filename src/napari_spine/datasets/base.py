"""What every dataset adapter provides, and the records they exchange."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..case import SpineCase
from ..errors import reading
from ..io.nifti import nifti_stem  # noqa: F401 - the adapters import it from here

__all__ = ["CaseRef", "Dataset", "DatasetAdapter", "Detection", "scan_files"]


@dataclass(frozen=True)
class CaseRef:
    """One case of a dataset, as listed (nothing loaded yet).

    Attributes
    ----------
    kind : str
        Adapter name (``"ctspine1k"`` ...).
    case_id : str
    split : str
        ``"train"``, ``"validation"``, ``"test"``, ``"test_public"``, ``"test_private"`` or
        ``"unknown"``.
    images : Mapping[str, str]
        Sequence or variant name -> location (a path, or ``"archive.zip::member"``).
    labels : str or None
        Location of the segmentation, if any.
    metadata : Mapping
        Dataset metadata for the case (clinical, acquisition, group ...), read-only.
    """

    kind: str
    case_id: str
    split: str = "unknown"
    images: Mapping[str, str] = field(default_factory=dict)
    labels: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "images", MappingProxyType(dict(self.images)))
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    def __reduce__(self):  # picklable (for worker processes) despite the read-only mappings
        return (CaseRef, (self.kind, self.case_id, self.split, dict(self.images), self.labels,
                          dict(self.metadata)))

    @property
    def key(self) -> str:
        """``"<kind>/<case id>"``, the :attr:`SpineCase.key <napari_spine.SpineCase.key>` of
        the loaded case."""
        return f"{self.kind}/{self.case_id}"

    @property
    def has_labels(self) -> bool:
        """Whether the dataset has a segmentation for this case."""
        return self.labels is not None

    @property
    def sequences(self) -> tuple[str, ...]:
        """The names of the case's images (MMCSD sequences, SSMSpine variants ...)."""
        return tuple(self.images)


@dataclass(frozen=True)
class Detection:
    """An adapter's claim on a path: the dataset root it belongs to and how sure it is."""

    kind: str
    root: Path
    score: float
    reason: str


class DatasetAdapter:
    """Base class: one subclass per dataset, registered in :mod:`napari_spine.datasets`."""

    kind: str = ""
    title: str = ""
    #: Metadata keys shown as columns of the case table.
    columns: tuple[str, ...] = ()
    #: Selectable image sequences/variants (first = default); empty for single-image datasets.
    sequence_choices: tuple[str, ...] = ()
    #: Shown in the UI: what the adapter assumed where the dataset's documentation is silent.
    assumptions: tuple[str, ...] = ()

    def detect(self, path: Path) -> Detection | None:  # pragma: no cover - abstract
        """A :class:`Detection` when ``path`` is (inside) this dataset, else None."""
        raise NotImplementedError

    def list_cases(self, root: Path, within: Path | None = None, *,
                   warn: Callable[[str], None] | None = None) -> list[CaseRef]:  # pragma: no cover
        """The cases under ``root`` (or ``within``); problems found while listing (duplicate
        IDs, a case in two splits, missing archive parts ...) go to ``warn``."""
        raise NotImplementedError

    def load_case(self, ref: CaseRef, sequence: str | None = None) -> SpineCase:  # pragma: no cover
        """Load one listed case (``sequence`` picks an image where the dataset has several)."""
        raise NotImplementedError

    def dataset_warnings(self, root: Path) -> list[str]:
        """Problems found with the dataset as a whole (missing metadata ...)."""
        return []

    def load_sequences(self, ref: CaseRef) -> dict[str, SpineCase]:
        """Every image sequence of a case (multi-sequence datasets override nothing else)."""
        return {seq: load_ref(self, ref, seq) for seq in ref.images}


@dataclass
class Dataset:
    """An opened dataset: its kind, root and listed cases."""

    kind: str
    root: Path
    adapter: DatasetAdapter
    cases: list[CaseRef]
    detection: Detection
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.cases)

    def __getitem__(self, key: int | str) -> CaseRef:
        if isinstance(key, int):
            return self.cases[key]
        for c in self.cases:
            if c.case_id == key:
                return c
        raise KeyError(f"{self.root}: no case {key!r} in this {self.kind} dataset")

    def split_counts(self) -> dict[str, int]:
        """Number of cases per split."""
        return dict(sorted(Counter(c.split for c in self.cases).items()))

    def load_case(self, key: int | str | CaseRef, sequence: str | None = None) -> SpineCase:
        """Load a case by id (or :class:`CaseRef`)."""
        ref = key if isinstance(key, CaseRef) else self[key]
        return load_ref(self.adapter, ref, sequence)

    def filter(self, text: str = "", split: str | None = None) -> list[CaseRef]:
        """Cases whose id or metadata contain ``text`` (case-insensitive), in ``split``."""
        t = text.strip().lower()
        out = []
        for c in self.cases:
            if split and split != "all" and c.split != split:
                continue
            if t and t not in c.case_id.lower() and not any(
                t in str(v).lower() for v in c.metadata.values()
            ):
                continue
            out.append(c)
        return out


def load_ref(adapter: DatasetAdapter, ref: CaseRef, sequence: str | None = None) -> SpineCase:
    """``adapter.load_case`` with every failure a :class:`SpineIOError` naming the case."""
    where = next(iter(ref.images.values()), None) or f"{ref.kind} case {ref.case_id}"
    with reading(where, f"load {ref.kind} case {ref.case_id}"):
        return adapter.load_case(ref, sequence)


def scan_files(root: Path, suffixes: Sequence[str], max_depth: int = 6) -> Iterable[Path]:
    """Files under ``root`` whose lower-case names end with one of ``suffixes`` (os.scandir)."""
    suffixes = tuple(s.lower() for s in suffixes)
    stack = [(Path(root), 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except (PermissionError, FileNotFoundError, NotADirectoryError):
            continue
        subdirs = []
        for e in entries:
            if e.name.startswith("."):
                continue
            if e.is_dir(follow_symlinks=False):
                if depth < max_depth:
                    subdirs.append((Path(e.path), depth + 1))
            elif e.name.lower().endswith(suffixes):
                yield Path(e.path)
        stack.extend(reversed(subdirs))


def pair_images_and_masks(base: Path, mask_suffix: str, warn: Callable[[str], None] | None = None,
                           groups: Iterable[str] = ()) -> list[tuple[Path, Path | None]]:
    """NIfTI files under ``base`` as ``(image, mask or None)`` pairs; a mask is
    ``<stem><mask_suffix>`` (case-sensitive: ``_SEG`` vs ``_seg``).

    A mask pairs with the image of its stem in the folder of the same name
    (``volumes/COLONOG/X`` with ``labels/COLONOG/X_seg``; both in one folder), or, when its
    stem is unique in the whole tree, with that image wherever it lies (``annotation/X`` with
    ``segmentation/X_SEG``), unless either folder is one of the dataset's ``groups``: a mask
    is never paired across groups. A mask nobody claims goes to ``warn``.
    """
    groups = set(groups)
    images: list[Path] = []
    masks: dict[tuple[str, str], Path] = {}
    by_stem: dict[str, list[Path]] = {}
    for f in scan_files(base, (".nii.gz", ".nii")):
        stem = nifti_stem(f)
        if stem.endswith(mask_suffix):
            key = stem[: -len(mask_suffix)]
            masks[(f.parent.name, key)] = f
            by_stem.setdefault(key, []).append(f)
        else:
            images.append(f)
    image_stems = Counter(nifti_stem(f) for f in images)
    pairs, used = [], set()
    for img in images:
        stem = nifti_stem(img)
        mask = masks.get((img.parent.name, stem))
        if mask is None and len(by_stem.get(stem, ())) == 1 and image_stems[stem] == 1:
            other = by_stem[stem][0]
            if img.parent.name not in groups and other.parent.name not in groups:
                mask = other
        if mask is not None:
            used.add(mask)
        pairs.append((img, mask))
    if warn is not None:
        for stem, files in sorted(by_stem.items()):
            for f in files:
                if f not in used:
                    warn(f"{f}: a mask without its image ({stem} in the same group folder)")
    return pairs


def unique_case_ids(ids: Sequence[str], groups: Sequence[str],
                    warn: Callable[[str], None] | None = None) -> list[str]:
    """Case ids made unique: an id found in several groups becomes ``<group>/<id>``."""
    count = Counter(ids)
    out = []
    for cid, group in zip(ids, groups, strict=True):
        out.append(f"{group}/{cid}" if count[cid] > 1 else cid)
    if warn is not None:
        for cid, n in sorted(count.items()):
            if n > 1:
                warn(f"case {cid} appears in {n} groups; listed as <group>/{cid}")
    return out

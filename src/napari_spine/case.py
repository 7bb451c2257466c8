"""The data model that crosses module boundaries: :class:`SpineCase` and its parts.

Pure numpy; no I/O, no napari, no torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
from nibabel.affines import voxel_sizes

from . import geometry
from .anatomy import ontology
from .errors import GeometryError

__all__ = ["LabelEntry", "Landmarks", "SourceGeometry", "SpineCase", "MODALITIES"]

MODALITIES = ("CT", "MR-T1", "MR-T2", "MR", "X-ray", "unknown")


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64, copy=True)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, slots=True)
class Landmarks:
    """Named points in the voxel space of :attr:`SpineCase.image` (display order).

    Attributes
    ----------
    coords : (N, 3) float array
        Voxel indices of the display-ordered image (2-D cases use ``(N, 3)`` with a
        zero first coordinate).
    structure_ids : (N,) int array
        Canonical anatomy ids (see :mod:`napari_spine.anatomy.ontology`).
    names : tuple of str
        Per-point names, e.g. ``"L3 body centre"``.
    """

    coords: np.ndarray
    structure_ids: np.ndarray
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        c = _readonly(np.asarray(self.coords, dtype=np.float64).reshape(-1, 3))
        ids = np.asarray(self.structure_ids, dtype=np.int64).reshape(-1).copy()
        ids.setflags(write=False)
        if len(ids) != len(c):
            raise ValueError(f"{len(c)} landmark coordinates but {len(ids)} structure ids")
        names = tuple(self.names) or tuple(ontology.name_of(i) for i in ids)
        if len(names) != len(c):
            raise ValueError(f"{len(c)} landmark coordinates but {len(names)} names")
        object.__setattr__(self, "coords", c)
        object.__setattr__(self, "structure_ids", ids)
        object.__setattr__(self, "names", names)

    def __len__(self) -> int:
        return len(self.coords)

    @property
    def structure_names(self) -> tuple[str, ...]:
        """The anatomy name of each landmark's structure."""
        return tuple(ontology.name_of(i) for i in self.structure_ids)


@dataclass(frozen=True, slots=True)
class SourceGeometry:
    """How the case is stored on disk, kept to restore it exactly on export.

    Attributes
    ----------
    path : str
        The image file (or ``""`` for in-memory cases).
    shape : tuple of int
        Shape of the array in the file's own voxel order.
    affine : (4, 4) array
        The file's voxel-to-world (RAS+ mm) affine.
    ornt : (3, 2) array
        nibabel orientation transform from file order to display order.
    header : nibabel header or None
        A private copy of the image header (qform/sform codes, units, descrip ...).
    label_header : nibabel header or None
        The labels file's own header, when the labels came from a file.
    """

    path: str
    shape: tuple[int, ...]
    affine: np.ndarray
    ornt: np.ndarray
    header: Any = None
    label_header: Any = None
    label_path: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "affine", _readonly(self.affine))
        object.__setattr__(self, "ornt", _readonly(self.ornt))
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))

    @property
    def axcodes(self) -> tuple[str, str, str]:
        """The file's axis codes (``("L", "P", "S")`` for an LPS file)."""
        return geometry.axcodes(self.affine)

    @property
    def obliquity_deg(self) -> float:
        """How far the file's axes are from the scanner axes, in degrees (0 when aligned)."""
        return geometry.obliquity_degrees(self.affine)

    @property
    def oblique(self) -> bool:
        """Whether the file's axes are further from the scanner axes than the tolerance."""
        return self.obliquity_deg > geometry.OBLIQUE_TOLERANCE_DEG


@dataclass(frozen=True)
class LabelEntry:
    """What one native label id of a case is.

    ``anatomy_id`` is the anatomy-table id (``None`` for structures outside the spine
    table, such as ``liver``); ``source`` says where the name came from: ``"file header"``,
    ``"sidecar"``, ``"file names"``, ``"dataset"``, ``"scheme"`` or ``"unknown"``.
    """

    native_id: int
    name: str
    anatomy_id: int | None
    color: tuple[float, float, float, float]
    source: str

    @property
    def is_spine(self) -> bool:
        """Whether the structure is in the spine anatomy table (not an organ of another tool)."""
        return self.anatomy_id is not None


def _names_other_than(own: str, anatomy: int) -> bool:
    """True when a file's own name says more than its anatomy id ("Spinal cord at C2")."""
    from .anatomy.labelnames import match_anatomy

    return match_anatomy(own) != anatomy


def _other_color(i: int) -> tuple[float, float, float, float]:
    """A fixed, distinct colour for a structure outside the anatomy table."""
    import colorsys

    r, g, b = colorsys.hsv_to_rgb((i * 0.618033988749895) % 1.0, 0.45, 0.85)
    return (r, g, b, 1.0)


@dataclass(frozen=True, slots=True)
class SpineCase:
    """One case: image, labels and landmarks in display order, plus where they came from.

    Attributes
    ----------
    case_id, dataset : str
        Identity (``dataset`` is the adapter name, e.g. ``"ctspine1k"`` or ``"nifti"``).
    image : (D0, D1, D2) array
        Native dtype, display order (see :mod:`napari_spine.geometry`). Usually a view of
        the loaded file array.
    affine : (4, 4) array
        Voxel-to-world (RAS+ mm) affine of ``image``.
    labels : (D0, D1, D2) uint8 array or None
        Canonical anatomy ids, same grid as ``image``: the anatomy view of the labels.
    native_labels : (D0, D1, D2) integer array or None
        The label file's own ids as loaded (display order), kept when the anatomy view
        loses something (ids outside the spine table, another dtype, another numbering), so
        that a native export writes them back voxel for voxel wherever the anatomy view was
        not edited. ``None`` when the anatomy view is the file's ids.
    label_scheme : str
        The native scheme the labels came from (used by ``scheme="native"`` exports).
    landmarks : Landmarks or None
    modality : str
        One of :data:`MODALITIES`.
    source : SourceGeometry
    metadata : Mapping
        Read-only provenance and dataset metadata.
    warnings : tuple of str
        Things a user must be told (oblique display, assumed spacing ...).
    """

    case_id: str
    dataset: str
    image: np.ndarray
    affine: np.ndarray
    source: SourceGeometry
    labels: np.ndarray | None = None
    label_scheme: str = "verse"
    landmarks: Landmarks | None = None
    modality: str = "unknown"
    metadata: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    native_labels: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.image.ndim != 3:
            raise GeometryError(f"{self.case_id}: image must be 3-D, got shape {self.image.shape}")
        object.__setattr__(self, "affine", _readonly(geometry.check_affine(self.affine, self.case_id)))
        if self.labels is not None:
            if self.labels.shape != self.image.shape:
                raise GeometryError(
                    f"{self.case_id}: labels shape {self.labels.shape} differs from image shape "
                    f"{self.image.shape}"
                )
            if self.labels.dtype.kind not in "ui":
                raise TypeError(f"{self.case_id}: labels must be integer, got {self.labels.dtype}")
        if self.native_labels is not None and self.native_labels.shape != self.image.shape:
            raise GeometryError(f"{self.case_id}: native labels shape {self.native_labels.shape} "
                                f"differs from image shape {self.image.shape}")
        if self.modality not in MODALITIES:
            raise ValueError(f"{self.case_id}: unknown modality {self.modality!r}")
        if not isinstance(self.metadata, MappingProxyType):
            object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))
        object.__setattr__(self, "warnings", tuple(self.warnings))

    # -- identity and derived geometry --------------------------------------------------
    @property
    def key(self) -> str:
        """``"<dataset>/<case id>"``: how the review queue, reports and panels name a case."""
        return f"{self.dataset}/{self.case_id}"

    @property
    def shape(self) -> tuple[int, int, int]:
        """Voxels along the display axes (left-right, superior-inferior, anterior-posterior)."""
        return tuple(self.image.shape)  # type: ignore[return-value]

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel sizes in mm along the display axes."""
        return tuple(float(v) for v in voxel_sizes(self.affine))  # type: ignore[return-value]

    @property
    def display(self) -> geometry.DisplayTransform:
        """Diagonal scale/translate that napari layers of this case use."""
        return geometry.display_transform(self.affine)

    @property
    def structures_present(self) -> tuple[int, ...]:
        """Anatomy ids present in the labels (background excluded), ascending."""
        from .anatomy.labelmaps import present_ids

        if self.labels is None:
            return ()
        return tuple(int(i) for i in present_ids(self.labels) if i != 0)

    def label_table(self) -> dict[int, LabelEntry]:
        """Every native label id present, with its name, anatomy id, colour and the source of
        the name: the one place panels, ``describe()`` and ``info`` read names from.

        Ids of the file's own numbering when it has one (:attr:`native_labels`), else the
        anatomy ids themselves. An id no source explains reads ``"Label N (unknown)"``.
        """
        from .anatomy.labelmaps import get_label_map, present_ids

        if self.labels is None:
            return {}
        try:
            lmap = get_label_map(self.label_scheme)
        except Exception:  # noqa: BLE001 - a scheme unknown here: anatomy ids only
            lmap = None
        native = self.native_labels is not None and lmap is not None
        ids = present_ids(self.native_labels if native else self.labels)
        present_anatomy = set(self.structures_present)
        table: dict[int, LabelEntry] = {}
        for i in (int(v) for v in ids if v):
            anatomy = lmap.to_canonical.get(i) if native else i
            if anatomy is not None and anatomy not in ontology.BY_ID:
                anatomy = None
            own = lmap.native_names.get(i) if lmap is not None and native else None
            if anatomy is not None and own and _names_other_than(own, anatomy):
                name, source, color = own, lmap.source, ontology.color_of(anatomy)
            elif anatomy is not None:
                name = ontology.display_name(anatomy, present_anatomy)
                source = lmap.source if lmap is not None and native else "scheme"
                color = ontology.color_of(anatomy)
            elif own:
                name, source, color = own, lmap.source, _other_color(i)
            else:
                name, source, color = f"Label {i} (unknown)", "unknown", _other_color(i)
            table[i] = LabelEntry(i, name, anatomy, color, source)
        return table

    def other_structures(self) -> list[LabelEntry]:
        """The label table's structures outside the spine anatomy table."""
        return [e for e in self.label_table().values() if not e.is_spine]

    # -- functional updates --------------------------------------------------------------
    def with_labels(self, labels: np.ndarray | None, label_scheme: str | None = None) -> SpineCase:
        """A copy of the case with other labels (canonical ids, display order).

        The copy has no native labels: other labels (a prediction, a renumbering) are not
        the file's, so nothing of the loaded file is written back with them.
        """
        if labels is not None:
            labels = np.asarray(labels)
            if labels.dtype != np.uint8 and labels.size and int(labels.max(initial=0)) < 256:
                labels = labels.astype(np.uint8)
        return dataclasses.replace(
            self, labels=labels, label_scheme=label_scheme or self.label_scheme, native_labels=None
        )

    def file_ids(self) -> np.ndarray | None:
        """The label file's own ids (display order): the native labels, or the labels
        themselves when the scheme maps every id to itself."""
        return self.native_labels if self.native_labels is not None else self.labels

    def with_scheme(self, scheme: str) -> SpineCase:
        """The case with its label file's ids read in another scheme (the image is kept).

        Raises :class:`~napari_spine.errors.LabelMapError` naming the ids the scheme lacks.
        """
        from .anatomy.labelmaps import get_label_map

        native = self.file_ids()
        if native is None:
            raise ValueError(f"{self.case_id}: no labels to read in another scheme")
        lmap = get_label_map(scheme)
        canon = lmap.to_canonical_array(native, source=self.source.label_path or self.case_id)
        return dataclasses.replace(self, labels=canon, label_scheme=lmap.name,
                                   native_labels=None if canon is native else native)

    def fitting_schemes(self) -> list[str]:
        """The schemes that can read every id of the label file: the current one first."""
        from .anatomy.labelmaps import available_schemes, get_label_map, present_ids

        native = self.file_ids()
        if native is None:
            return []
        ids = {int(i) for i in present_ids(native) if i}
        out = [self.label_scheme]
        for name in available_schemes():
            lm = get_label_map(name)
            if name != self.label_scheme and (lm.unmapped == "background" or ids <= set(lm.to_canonical)):
                out.append(name)
        return out

    def with_landmarks(self, landmarks: Landmarks | None) -> SpineCase:
        """The case with other landmarks (same image, labels and geometry)."""
        return dataclasses.replace(self, landmarks=landmarks)

    def describe(self) -> str:
        """A human-readable summary: ids, geometry, labels, names and warnings."""
        sp = ", ".join(f"{s:.3g}" for s in self.spacing)
        lines = [
            f"{self.dataset} case {self.case_id}: {self.modality}, shape {self.shape}, "
            f"spacing ({sp}) mm, file orientation {''.join(self.source.axcodes)}",
        ]
        if self.labels is not None:
            names = ", ".join(ontology.display_name(i, self.structures_present)
                              for i in self.structures_present)
            lines.append(f"structures: {names or 'none'}")
            others = self.other_structures()
            if others:
                lines.append(f"other structures ({len(others)}): "
                             + ", ".join(e.name for e in others))
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls,
        image: np.ndarray,
        affine: np.ndarray,
        labels: np.ndarray | None = None,
        *,
        case_id: str = "case",
        dataset: str = "memory",
        modality: str = "unknown",
        landmarks: Landmarks | None = None,
        label_scheme: str = "verse",
        metadata: Mapping[str, Any] | None = None,
        header: Any = None,
        path: str = "",
        label_header: Any = None,
        label_path: str = "",
        extra_warnings: Sequence[str] = (),
        native_labels: np.ndarray | None = None,
    ) -> SpineCase:
        """Build a case from file-ordered arrays and the file's affine.

        ``labels`` must already hold canonical ids; ``native_labels`` are the file's own ids
        when they differ. ``landmarks`` are in display voxel coordinates.
        """
        image = np.asanyarray(image)
        if image.ndim != 3:
            raise GeometryError(f"{path or case_id}: expected a 3-D image, got shape {image.shape}")
        affine = geometry.check_affine(affine, path or case_id)
        ornt = geometry.orientation_to_display(affine)
        disp_aff = geometry.reoriented_affine(affine, ornt, image.shape)
        src = SourceGeometry(path=path, shape=image.shape, affine=affine, ornt=ornt, header=header,
                             label_header=label_header, label_path=label_path)
        warnings = list(extra_warnings)
        if src.oblique:
            warnings.append(
                f"oblique acquisition ({src.obliquity_deg:.1f} degrees off the scanner axes): "
                "displayed axis-aligned; the exported files keep the true orientation"
            )
        return cls(
            case_id=case_id,
            dataset=dataset,
            image=geometry.to_display(image, ornt),
            affine=disp_aff,
            source=src,
            labels=None if labels is None else geometry.to_display(labels, ornt),
            native_labels=None if native_labels is None else geometry.to_display(native_labels, ornt),
            label_scheme=label_scheme,
            landmarks=landmarks,
            modality=modality,
            metadata=metadata or {},
            warnings=tuple(warnings),
        )

"""Level identification for semantic spine masks (vertebral body / disc without levels).

CSpineSeg and TotalSegmentator's ``vertebrae_body`` label every vertebral body with one
id and every disc with another. :func:`identify_levels` splits them into per-level
instances: connected components ordered cranio-caudally (display row, superior first),
numbered from an *anchor* level given for the topmost body in the field of view; each
disc takes the level of the nearest body above it. The input is never modified.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import ontology

__all__ = ["LevelResult", "identify_levels", "standard_levels"]


def standard_levels() -> tuple[str, ...]:
    """C1 ... C7, T1 ... T12, L1 ... L5, S1: the usual cranio-caudal sequence."""
    return ontology.level_names()


@dataclass
class LevelResult:
    """Per-level labels and what was assigned (for display and review)."""

    labels: np.ndarray
    bodies: list[tuple[int, float]] = field(default_factory=list)  # (canonical id, centroid row)
    discs: list[tuple[int, float]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _components(mask: np.ndarray, min_voxels: int):
    from scipy import ndimage

    lab, n = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return lab, []
    idx = np.arange(1, n + 1)
    sizes = ndimage.sum_labels(mask, lab, idx)
    rows = ndimage.mean(np.broadcast_to(np.arange(mask.shape[1])[None, :, None], mask.shape), lab, idx)
    comps = [(int(i), float(r), int(s)) for i, r, s in zip(idx, rows, sizes) if s >= min_voxels]
    comps.sort(key=lambda c: c[1])
    return lab, comps


def identify_levels(
    labels: np.ndarray,
    anchor: str = "C2",
    *,
    spacing=(1.0, 1.0, 1.0),
    body_id: int | tuple[int, ...] = (ontology.GENERIC_VERTEBRAL_BODY, ontology.GENERIC_VERTEBRA),
    disc_id: int = ontology.GENERIC_DISC,
    min_volume_mm3: float = 50.0,
) -> LevelResult:
    """Number generic bodies and discs by level (display-ordered labels, superior = row 0).

    Parameters
    ----------
    labels : (D0, D1, D2) uint8
        Canonical ids; ``body_id`` / ``disc_id`` voxels are split into levels.
    anchor : str
        Level of the topmost vertebral body in the field of view (``"C2"`` for most
        cervical MRI; editable because the top of the field of view varies).
    min_volume_mm3 : float
        Components smaller than this (noise, slivers) keep their generic id.
    """
    seq = standard_levels()
    if anchor not in seq:
        raise ValueError(f"anchor {anchor!r} is not a level ({', '.join(seq)})")
    out = np.array(labels, dtype=np.uint8, copy=True)
    vox_mm3 = float(np.prod(spacing))
    min_vox = max(1, int(round(min_volume_mm3 / vox_mm3)))
    result = LevelResult(labels=out)

    body_lab, bodies = _components(np.isin(labels, np.atleast_1d(body_id)), min_vox)
    start = seq.index(anchor)
    for k, (comp, row, _) in enumerate(bodies):
        if start + k >= len(seq):
            result.warnings.append(f"{len(bodies) - k} body component(s) below S1 left unassigned")
            break
        vid = ontology.vertebra_id(seq[start + k])
        out[body_lab == comp] = vid
        result.bodies.append((vid, row))

    disc_lab, discs = _components(labels == disc_id, min_vox)
    for comp, row, _ in discs:
        above = [(vid, r) for vid, r in result.bodies if r < row]
        if above:
            vid = max(above, key=lambda t: t[1])[0]
        else:  # above the topmost body: the disc below the level before the anchor
            prev = seq.index(anchor) - 1
            vid = ontology.vertebra_id(seq[prev]) if prev >= 0 else -1
        did = vid + ontology.DISC_OFFSET
        if vid < 0 or did not in ontology.BY_ID:
            result.warnings.append(f"a disc at row {row:.0f} has no level above it; left unassigned")
            continue
        out[disc_lab == comp] = did
        result.discs.append((did, row))
    if not bodies:
        result.warnings.append("no vertebral body components found")
    return result

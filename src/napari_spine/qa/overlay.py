"""Where two labellings disagree, and whether the disagreement is a level shift.

:func:`disagreement_map` tells *missed* (the reference labels a voxel, the candidate does
not), *extra* (the other way round) and *mislabelled* (both label it, as different
structures) apart: a vertebra drawn right but numbered one level off is mislabelled, not
over-segmentation. :func:`level_shift` says when most of the disagreement is one constant
offset along the spine ("candidate is shifted by +1 level: L3 labelled L4 ...");
:func:`unshift` applies the correction to the candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..anatomy import ontology
from ..anatomy.labelmaps import present_ids

__all__ = ["DISAGREEMENT_COLORS", "DISAGREEMENT_NAMES", "LevelShift", "disagreement_map",
           "level_shift", "unshift"]

#: label value -> meaning of the :func:`disagreement_map` image
DISAGREEMENT_NAMES = {0: "agree", 1: "missed (FN)", 2: "extra (FP)", 3: "mislabelled"}
#: label value -> RGBA (blue missed, red extra, yellow mislabelled; agreement transparent)
DISAGREEMENT_COLORS = {0: (0.0, 0.0, 0.0, 0.0), 1: (0.2, 0.4, 1.0, 1.0), 2: (1.0, 0.2, 0.2, 1.0),
                       3: (1.0, 0.85, 0.1, 1.0)}


def disagreement_map(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """uint8 image: 1 missed (reference only), 2 extra (candidate only), 3 mislabelled
    (both label the voxel, as different structures), 0 agreement.

    >>> disagreement_map(np.array([0, 1, 1, 2]), np.array([1, 1, 0, 3])).tolist()
    [2, 0, 1, 3]
    """
    a, b = np.asarray(reference), np.asarray(candidate)
    if a.shape != b.shape:
        raise ValueError(f"reference {a.shape} and candidate {b.shape} differ in shape")
    # 1 for a reference voxel, +2 for a candidate voxel (3: both), then 0 where they agree
    out = (a > 0).view(np.uint8) + np.left_shift((b > 0).view(np.uint8), 1)
    out[a == b] = 0
    return out


@dataclass(frozen=True)
class LevelShift:
    """The candidate numbers the levels ``offset`` steps lower than the reference (+1:
    the reference's L3 is the candidate's L4)."""

    offset: int
    fraction: float  # of the voxels where both label a level but differ, explained by the offset
    voxels: int
    examples: tuple[tuple[str, str], ...]  # (reference level, candidate level), cranial first

    @property
    def message(self) -> str:
        """``"candidate is shifted by +1 level (L3 labelled L4, L4 labelled L5)"``."""
        ex = ", ".join(f"{r} labelled {c}" for r, c in self.examples[:3])
        n = abs(self.offset)
        return f"candidate is shifted by {self.offset:+d} level{'s' if n > 1 else ''} ({ex})"

    def as_dict(self) -> dict:
        """JSON form (``qa.json``'s ``level_shift`` entry)."""
        return {"offset": self.offset, "fraction": round(self.fraction, 4), "voxels": self.voxels,
                "examples": [list(e) for e in self.examples], "message": self.message}


def _order(*labels: np.ndarray) -> dict[int, int]:
    """Vertebra and disc id -> position in the cranio-caudal sequence (a disc sits between
    its vertebrae, so a shift moves vertebrae and discs by the same number of levels);
    T13 and L6 take a place only when one of ``labels`` has them."""
    present = set()
    for lab in labels:
        present |= {int(v) for v in present_ids(np.asarray(lab))}
    extra = [n for n in ("T13", "L6") if ontology.vertebra_id(n) in present]
    out = {}
    for k, name in enumerate(ontology.level_names(extra)):
        vid = ontology.vertebra_id(name)
        out[vid] = 2 * k
        if vid + ontology.DISC_OFFSET in ontology.BY_ID:
            out[vid + ontology.DISC_OFFSET] = 2 * k + 1
    return out


def level_shift(reference: np.ndarray, candidate: np.ndarray, *, min_fraction: float = 0.6,
                min_voxels: int = 50) -> LevelShift | None:
    """A constant level offset that explains most of the mislabelling, else None.

    Only voxels that both label as numbered levels (vertebrae or discs) and that differ
    count; the offset is counted in levels (a vertebra to the next vertebra, a disc to
    the next disc). ``min_fraction`` of those voxels must share one offset.

    >>> ref = np.repeat([20, 21, 22], 40)          # L1 L2 L3
    >>> level_shift(ref, ref + 1).message
    'candidate is shifted by +1 level (L1 labelled L2, L2 labelled L3, L3 labelled L4)'
    """
    order = _order(reference, candidate)
    lut = np.full(256, -1, np.int32)
    for sid, pos in order.items():
        lut[sid] = pos
    a, b = np.asarray(reference), np.asarray(candidate)
    if a.shape != b.shape:
        raise ValueError(f"reference {a.shape} and candidate {b.shape} differ in shape")
    differ = np.nonzero(a != b)  # one pass; the rest looks at the differing voxels only
    a = np.clip(a[differ], 0, 255).astype(np.uint8)
    b = np.clip(b[differ], 0, 255).astype(np.uint8)
    pa, pb = lut[a], lut[b]
    both = (pa >= 0) & (pb >= 0)
    n = int(both.sum())
    if n < min_voxels:
        return None
    diff = pb[both] - pa[both]
    steps, counts = np.unique(diff, return_counts=True)
    best = int(np.argmax(counts))
    if counts[best] < min_fraction * n or steps[best] % 2:  # a vertebra labelled as a disc: no shift
        return None
    offset = int(steps[best]) // 2
    pairs, pair_n = np.unique(np.stack([a[both], b[both]], 1)[diff == steps[best]], axis=0, return_counts=True)
    keep = sorted((tuple(int(x) for x in p) for p, k in zip(pairs, pair_n) if k >= min_voxels // 5),
                  key=lambda p: order[p[0]])
    examples = tuple((ontology.name_of(r), ontology.name_of(c)) for r, c in keep if order[r] % 2 == 0)
    return LevelShift(offset, float(counts[best]) / n, int(counts[best]), examples)


def unshift(candidate: np.ndarray, shift: LevelShift) -> np.ndarray:
    """The candidate renumbered by ``-shift.offset`` levels (vertebrae and discs; other
    structures as they are)."""
    order = _order(candidate)
    by_pos = {p: s for s, p in order.items()}
    lut = np.arange(256, dtype=np.uint8)
    for sid, pos in order.items():
        target = by_pos.get(pos - 2 * shift.offset)
        if target is not None:
            lut[sid] = target
    return lut[np.clip(np.asarray(candidate), 0, 255).astype(np.uint8)]

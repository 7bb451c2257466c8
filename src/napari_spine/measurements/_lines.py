"""The measurement lines drawn on the views: each height as a segment in display voxels."""

from __future__ import annotations

import numpy as np

from ._frames import FRACTIONS
from ._structures import Structure

_NAMES = ("posterior", "middle", "anterior")


def _to_voxels(affine: np.ndarray, pts: np.ndarray) -> np.ndarray:
    inv = np.linalg.inv(affine)
    return pts @ inv[:3, :3].T + inv[:3, 3]


def structure_lines(st: Structure, affine: np.ndarray, kind: str) -> list[dict]:
    """Three height segments of a body or disc, centred on their columns, in display voxels."""
    h = st.heights
    q = st.frame.coords(st.cloud.points)
    l_mid = (q[:, 0].min() + q[:, 0].max()) / 2
    e_a = st.cloud.extent_along(st.frame.a)
    a_lo = q[:, 1].min() - e_a / 2
    out = []
    for name, f, height in zip(_NAMES, FRACTIONS, (h.posterior, h.middle, h.anterior)):
        p = a_lo + f * h.depth
        near = np.abs(q[:, 1] - p) <= max(e_a, 0.05 * h.depth)
        centre_u = float(np.median(q[near, 2])) if near.any() else 0.0
        ends = np.array([[l_mid, p, centre_u - height / 2], [l_mid, p, centre_u + height / 2]])
        out.append({"structure_id": st.sid, "kind": kind, "measure": f"height_{name}_mm",
                    "value": round(float(height), 2),
                    "voxels": _to_voxels(affine, st.frame.world(ends))})
    return out


def measurement_lines(bodies: dict[int, Structure], discs: dict[int, Structure],
                      affine: np.ndarray) -> list[dict]:
    """The height lines of every measured body and disc."""
    out = []
    for sid, st in bodies.items():
        if sid != 26 and st.frame is not None:
            out.extend(structure_lines(st, affine, "body"))
    for st in discs.values():
        if st.frame is not None:
            out.extend(structure_lines(st, affine, "disc"))
    return out

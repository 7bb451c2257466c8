"""Angles between endplates: segmental and disc angles, lordosis, kyphosis and Cobb.

Sagittal angles are read in the patient's sagittal plane (world y-z) and coronal angles in
the coronal plane (world x-z), from endplate normals that point cranially. The tilt of an
endplate is the angle of its normal from superior, towards anterior (sagittal) or towards the
patient's right (coronal). Lordosis is positive: from an upper to a lower endplate the tilt
grows anteriorly along a column that is convex to the front.
"""

from __future__ import annotations

import numpy as np

from ..anatomy import ontology
from ._frames import Plane
from ._structures import Structure


def sagittal_tilt(n: np.ndarray) -> float:
    """Degrees from superior towards anterior of a cranial normal, in the sagittal plane."""
    return float(np.degrees(np.arctan2(n[1], n[2])))


def coronal_tilt(n: np.ndarray) -> float:
    """Degrees from superior towards the patient's right of a cranial normal, coronally."""
    return float(np.degrees(np.arctan2(n[0], n[2])))


def _row(name: str, value: float, upper: str, lower: str, plane: str, definition: str) -> dict:
    return {"angle": name, "angle_deg": round(value, 2), "from": upper, "to": lower,
            "plane": plane, "definition": definition}


def _plate(bodies, sid, which) -> Plane | None:
    st = bodies.get(sid)
    return None if st is None else (st.superior if which == "superior" else st.inferior)


def _named(bodies, upper, u_plate, lower, l_plate, name, sign=1.0):
    a, b = _plate(bodies, upper, u_plate), _plate(bodies, lower, l_plate)
    if a is None or b is None:
        return None
    value = sign * (sagittal_tilt(b.normal) - sagittal_tilt(a.normal))
    return _row(name, value, f"{ontology.name_of(upper)} {u_plate}", f"{ontology.name_of(lower)} {l_plate}",
                "sagittal", "lordosis positive" if sign > 0 else "kyphosis positive")


def angle_rows(bodies: dict[int, Structure]) -> list[dict]:
    """Segmental and disc angles of adjacent levels, global curvatures and the Cobb angle."""
    order = [s for s in ontology.sort_cranio_caudal(bodies)]
    rows = []
    for up, low in zip(order, order[1:]):
        seg = _named(bodies, up, "superior", low, "superior",
                     f"segmental {ontology.name_of(up)}-{ontology.name_of(low)}")
        disc = _named(bodies, up, "inferior", low, "superior",
                      f"disc {ontology.name_of(up)}/{ontology.name_of(low)}")
        rows.extend(r for r in (seg, disc) if r is not None)
    for args in ((20, "superior", 26, "superior", "lumbar lordosis L1-S1"),
                 (2, "inferior", 7, "inferior", "cervical lordosis C2-C7")):
        r = _named(bodies, *args)
        if r is not None:
            rows.append(r)
    r = _named(bodies, 11, "superior", 19, "inferior", "thoracic kyphosis T4-T12", sign=-1.0)
    if r is not None:
        rows.append(r)
    cobb = cobb_angle(bodies)
    if cobb is not None:
        rows.append(cobb)
    return rows


def cobb_angle(bodies: dict[int, Structure]) -> dict | None:
    """The largest coronal angle between a superior endplate and an inferior endplate at or
    below it: the Cobb angle, with its end vertebrae."""
    order = [s for s in ontology.sort_cranio_caudal(bodies)]
    sup = [(k, coronal_tilt(bodies[s].superior.normal)) for k, s in enumerate(order)
           if bodies[s].superior is not None]
    inf = [(k, coronal_tilt(bodies[s].inferior.normal)) for k, s in enumerate(order)
           if bodies[s].inferior is not None]
    best = None
    for i, ti in sup:
        for j, tj in inf:
            if j >= i and (best is None or abs(ti - tj) > best[0]):
                best = (abs(ti - tj), i, j)
    if best is None:
        return None
    return _row("Cobb", best[0], f"{ontology.name_of(order[best[1]])} superior",
                f"{ontology.name_of(order[best[2]])} inferior", "coronal",
                "most tilted endplates, unsigned")

"""Spine measurements from masks and contours: body and disc heights, height loss, bone
intensity, segmental angles, lordosis and Cobb angles. Qt-free and torch-free.

>>> m = measure_case(case)              # doctest: +SKIP
>>> m.bodies[0]["height_anterior_mm"]   # doctest: +SKIP
>>> m.write_csv("measurements.csv")     # doctest: +SKIP

Definitions (also in the README):

- **Body heights** (anterior, middle, posterior) are measured along the body's own
  superior-inferior axis (the bisector of its two endplate normals) at 85 %, 50 % and 15 % of
  its anteroposterior depth from the posterior wall, as the mean height of a thin column
  (10 % of the depth, at least two voxels, by 30 % of the width).
- **Height loss** is 1 - the smaller of min/max of the body's three heights and of its
  heights over the mean of its measured neighbours' (Genant's comparisons); the grade uses
  Genant's bounds (20 %, 25 %, 40 %) on that loss; ``shape`` says which height is the
  smallest (wedge: anterior, biconcave: middle, crush: posterior) when graded.
- **Disc height index** is the disc's mean height over the mean height of the body above.
- **Trabecular intensity** (CT) is the mean and median of the body eroded by 3 mm.
- **Angles**: see :mod:`napari_spine.measurements._angles`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ._angles import angle_rows, cobb_angle
from ._lines import measurement_lines
from ._structures import discs, vertebral_bodies
from ._tables import body_rows, disc_rows, genant_grade

if TYPE_CHECKING:
    from ..case import SpineCase

__all__ = ["Measurements", "cobb_angle", "disc_table", "genant_grade", "measure_case",
           "vertebral_body_table", "CSV_COLUMNS"]

CSV_COLUMNS = (
    "case", "kind", "level", "source", "height_anterior_mm", "height_middle_mm",
    "height_posterior_mm", "height_mean_mm", "ratio_min_max", "ratio_neighbours", "height_loss",
    "genant_grade", "shape", "disc_height_index", "depth_mm", "width_mm", "volume_ml",
    "hu_mean", "hu_median", "angle", "angle_deg", "from", "to", "plane", "definition", "notes",
)


@dataclass
class Measurements:
    """The measurement tables of one case (rows are plain dicts)."""

    case: str
    bodies: list[dict] = field(default_factory=list)
    discs: list[dict] = field(default_factory=list)
    angles: list[dict] = field(default_factory=list)
    lines: list[dict] = field(default_factory=list)  # drawn lines, display voxel coordinates
    source: str = "mask"

    def rows(self) -> list[dict]:
        """All rows in one long table (the CSV's rows)."""
        out = []
        for kind, rows in (("body", self.bodies), ("disc", self.discs), ("angle", self.angles)):
            for r in rows:
                out.append({"case": self.case, "kind": kind, "source": self.source,
                            **{k: v for k, v in r.items() if k in CSV_COLUMNS}})
        return out

    def write_csv(self, path: str | Path, append: bool = False) -> Path:
        """Write (or append to) a CSV with :data:`CSV_COLUMNS`."""
        from ..io.files import write_bytes_atomic

        path = Path(path)
        lines = _csv_text(self.rows(), header=not (append and path.exists()))
        old = path.read_text(encoding="utf-8") if append and path.exists() else ""
        write_bytes_atomic(path, (old + lines).encode("utf-8"))
        return path

    def to_json(self) -> dict:
        """The tables as one JSON-ready mapping."""
        return {"case": self.case, "source": self.source, "bodies": self.bodies,
                "discs": self.discs, "angles": self.angles}

    def write_json(self, path: str | Path) -> Path:
        """Write :meth:`to_json` atomically."""
        from ..io.files import write_json

        path = Path(path)
        write_json(path, self.to_json())
        return path


def _csv_text(rows: list[dict], header: bool = True) -> str:
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    if header:
        w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def measure_labels(labels: np.ndarray, affine: np.ndarray, image=None, ct=False, case="",
                   present=()) -> Measurements:
    """Measurements of canonical-id ``labels`` on a grid with voxel-to-world ``affine``."""
    bodies = vertebral_bodies(labels, affine)
    disc_structs = discs(labels, affine, bodies)
    m = Measurements(case, body_rows(bodies, image, affine, ct), disc_rows(disc_structs, bodies, present),
                     angle_rows(bodies))
    m.lines = measurement_lines(bodies, disc_structs, affine)
    return m


def measure_case(case: SpineCase, source: str = "auto") -> Measurements:
    """Measure a case from its masks, or from its contours (SSMSpine) when ``source`` is
    ``"landmarks"``, or ``"auto"`` (masks when it has labels, else contours)."""
    from ..errors import SpineIOError

    if source == "auto":
        source = "mask" if case.labels is not None else "landmarks"
    if source == "landmarks":
        from ._contours import contour_labels

        labels, affine = contour_labels(case)
        m = measure_labels(labels, affine, case=case.key)
        m.lines = []  # drawn on the supersampled grid: not the case's
        m.source = "landmarks"
        return m
    if case.labels is None:
        raise SpineIOError(f"{case.key}: no labels to measure")
    return measure_labels(case.labels, case.affine, case.image, case.modality == "CT", case.key,
                          case.structures_present)


def vertebral_body_table(case: SpineCase) -> list[dict]:
    """One row per vertebral body (see the module text for the definitions)."""
    return measure_case(case).bodies


def disc_table(case: SpineCase) -> list[dict]:
    """One row per disc with its heights and disc height index."""
    return measure_case(case).discs

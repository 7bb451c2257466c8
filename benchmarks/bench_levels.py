"""On-demand benchmark: level identification on a CT-sized label volume.

    .venv/bin/python benchmarks/bench_levels.py

LEVELS-1: ``identify_levels`` (automatic anchor) on a 512 x 535 x 512 display-ordered label
volume (0.7 x 1.25 x 0.7 mm) holding 25 generic bony bodies (C1 ... L5 and a wedge sacrum)
and their discs; target <= 2 s on this machine. Reported against one cc3d connected-components
pass over the same body mask in the same run (the floor any component-based method pays).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def volume() -> tuple[np.ndarray, tuple[float, float, float]]:
    """C1 ... L5 and a wedge sacrum (25 bony bodies) with their discs, on a gently curved
    column; body heights and radii by region (cervical 13/9 mm, thoracic 20/14, lumbar 26/20)."""
    from napari_spine.anatomy import ontology

    sp = (0.7, 1.25, 0.7)
    lab = np.zeros((512, 535, 512), np.uint8)
    ii, kk = np.ogrid[:512, :512]
    levels = [("C", 13, 9)] * 7 + [("T", 20, 14)] * 12 + [("L", 26, 20)] * 5
    row = 10.0  # mm from the top
    for k, (_, h, rad) in enumerate(levels):
        cx, cz = 256 + 30 * np.sin(k / 7), 280 + 40 * np.sin(k / 5)
        disk = (((ii - cx) * sp[0]) ** 2 + ((kk - cz) * sp[2]) ** 2) <= rad ** 2
        for value, height in ((ontology.GENERIC_VERTEBRAL_BODY, h), (ontology.GENERIC_DISC, 5)):
            r0, r1 = int(round(row / sp[1])), int(round((row + height) / sp[1]))
            lab[:, r0:r1, :][np.broadcast_to(disk[:, None, :], (512, r1 - r0, 512))] = value
            row += height
    r0 = int(round(row / sp[1]))
    for j, rad in enumerate(np.linspace(28, 8, 535 - r0 - 2)):  # the sacrum narrows caudally
        lab[:, r0 + j, :][(((ii - cx) * sp[0]) ** 2 + ((kk - cz) * sp[2]) ** 2) <= rad ** 2] = (
            ontology.GENERIC_VERTEBRAL_BODY)
    return lab, sp


def main() -> int:
    import cc3d

    from napari_spine.anatomy import ontology
    from napari_spine.anatomy.levels import identify_levels

    lab, sp = volume()
    body = lab == ontology.GENERIC_VERTEBRAL_BODY
    t_cc, t_id = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        cc3d.connected_components(body, connectivity=26)
        t_cc.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        res = identify_levels(lab, spacing=sp)
        t_id.append(time.perf_counter() - t0)
    cc, ident = statistics.median(t_cc), statistics.median(t_id)
    names = [ontology.name_of(v) for v, _ in res.bodies]
    right = names == list(ontology.level_names())  # C1 ... L5, S1: every body named right
    out = {"identify_s": ident, "one_cc3d_pass_s": cc, "ratio": ident / cc, "bodies": len(res.bodies),
           "discs": len(res.discs), "anchor": res.anchor_source, "all_named_right": right}
    print(f"LEVELS-1 identify_levels {ident:.2f} s (target <= 2 s) vs one cc3d pass {cc:.2f} s "
          f"= {ident / cc:.1f}x; {len(res.bodies)} bodies {names[0]}..{names[-1]}, "
          f"{len(res.discs)} discs, anchor {res.anchor_source}, all named right: {right}")
    Path("bench_levels.json").write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""On-demand benchmark: the full measurement table of a 512x535x512 CT with 25 levels.

    .venv/bin/python benchmarks/bench_measurements.py

The case is the synthetic C2-S1 CT phantom at 0.7 mm (whole vertebrae, discs, canal and
cord); the time covers ``measure_case`` end to end (bodies cut from the vertebrae, frames,
endplates, heights, trabecular HU, discs, angles, lines), median of 3 runs, against the
time of one ``np.unique`` pass over the same labels as a same-run baseline.
"""

from __future__ import annotations

import json
import statistics
import time

import numpy as np


def main() -> int:
    from napari_spine import make_phantom
    from napari_spine.measurements import measure_case

    case = make_phantom((512, 535, 512), (0.7, 0.7, 0.7), levels=("C2", "S1"), noise=0.0)
    runs, base = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        m = measure_case(case)
        runs.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        np.unique(case.labels)
        base.append(time.perf_counter() - t0)
    res = {"voxels": int(case.labels.size), "levels": len([s for s in case.structures_present if s < 30]),
           "bodies": len(m.bodies), "discs": len(m.discs), "angles": len(m.angles),
           "measure_s": round(statistics.median(runs), 3), "np_unique_s": round(statistics.median(base), 3),
           "ratio_to_unique": round(statistics.median(runs) / statistics.median(base), 2),
           "target_s": 3.0}
    print(json.dumps(res, indent=1))
    return 0 if res["measure_s"] <= res["target_s"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""On-demand benchmark: correction operations on a 512x512x535 uint8 label volume.

    .venv/bin/python benchmarks/bench_correction.py

Same-run baselines and targets (issue acceptance):
- COR-1 shift all levels by one: <= 0.3 s and >= 10x faster than a per-label loop
- COR-2 remove islands: <= 2x one multi-label cc3d pass
- COR-3 level-sequence validator: <= 0.5 s
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def _t(fn, n=3):
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def main() -> int:
    import cc3d

    from napari_spine import make_phantom
    from napari_spine.correction import remove_islands, shift_levels, validate_sequence

    t0 = time.perf_counter()
    case = make_phantom((512, 535, 512), (0.7, 1.0, 0.7), levels=("T6", "L5"), seed=0)
    lab = np.ascontiguousarray(case.labels)
    spacing = case.spacing
    del case  # free the phantom's image before timing
    rng = np.random.default_rng(0)
    for _ in range(200):  # specks to remove
        z, y, x = rng.integers(0, 500, 3)
        lab[z : z + 2, y : y + 2, x : x + 2] = rng.choice([12, 15, 20])
    import gc

    gc.collect()
    print(f"labels {lab.shape} uint8, {len(np.unique(lab)) - 1} structures ({time.perf_counter() - t0:.0f} s to build)")
    res = {}

    def loop_shift():
        out = lab.copy()
        for sid in np.unique(lab):
            if 1 <= sid <= 23 or 101 <= sid <= 123:
                out[lab == sid] = sid + 1
        return out

    fast = _t(lambda: shift_levels(lab, +1))
    slow = _t(loop_shift, 1)
    res["COR-1"] = {"shift_s": fast, "per_label_loop_s": slow, "speedup": slow / fast,
                    "target": "<= 0.3 s and >= 10x"}
    print(f"COR-1 shift levels {fast:.3f} s, per-label loop {slow:.2f} s: {slow / fast:.0f}x")

    cc = _t(lambda: cc3d.connected_components(lab, connectivity=26, out_dtype=np.uint32))
    isl = _t(lambda: remove_islands(lab, 50, spacing))
    res["COR-2"] = {"remove_islands_s": isl, "cc3d_pass_s": cc, "ratio": isl / cc, "target": "<= 2x"}
    print(f"COR-2 remove islands {isl:.3f} s vs one cc3d pass {cc:.3f} s: {isl / cc:.2f}x")

    val = _t(lambda: validate_sequence(lab, spacing))
    res["COR-3"] = {"validate_s": val, "target_s": 0.5}
    print(f"COR-3 validator {val:.3f} s")
    Path("bench_correction.json").write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

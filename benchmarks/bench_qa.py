"""On-demand benchmark: per-level QA metrics on a 512x512x535 pair with 25 levels.

    .venv/bin/python benchmarks/bench_qa.py

- QA-1 Dice, volumes and centroids for every level in one pass vs a per-label loop
  (three full-volume passes per label), same run; values must be identical.
- QA-2 all metrics (with HD95 / MSD) vs the naive per-label computation on the full volume
  (medpy-style), timed on 3 levels and scaled to 25 (the full naive run takes minutes).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np


def _t(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> int:
    from scipy import ndimage

    from napari_spine import make_phantom
    from napari_spine.correction import relabel
    from napari_spine.qa import level_metrics

    case = make_phantom((512, 535, 512), (0.7, 1.0, 0.7), levels=("C7", "S1"), seed=0, include_canal=False)
    ref = np.ascontiguousarray(case.labels)
    sp = case.spacing
    del case
    cand = relabel(np.roll(ref, 1, axis=1), "L2", "L3")
    cand[100:110, 100:110, 100:110] = 12
    ids = sorted(set(np.unique(ref).tolist()) - {0})
    vertebrae = [i for i in ids if i < 100]
    print(f"pair {ref.shape}, {len(ids)} structures ({len(vertebrae)} vertebrae)")

    fast_t, rows = _t(lambda: level_metrics(ref, cand, sp, surface=False))

    def loop():
        out = {}
        for sid in ids:
            a, b = ref == sid, cand == sid
            na, nb = int(a.sum()), int(b.sum())
            out[sid] = (2 * int((a & b).sum()) / (na + nb), na, nb)
        return out

    slow_t, naive = _t(loop)
    by_id = {r.structure_id: r for r in rows}
    same = all(abs(by_id[s].dice - naive[s][0]) < 1e-12 and by_id[s].voxels_ref == naive[s][1] for s in ids)
    res = {"QA-1": {"one_pass_s": fast_t, "per_label_loop_s": slow_t, "speedup": slow_t / fast_t,
                    "identical": same, "target": ">= 25x"}}
    print(f"QA-1 overlap metrics: one pass {fast_t:.3f} s, per-label loop {slow_t:.2f} s "
          f"({slow_t / fast_t:.0f}x), identical: {same}")

    full_t, rows = _t(lambda: level_metrics(ref, cand, sp))
    st = ndimage.generate_binary_structure(3, 1)

    def naive_surface(sid):
        a, b = ref == sid, cand == sid
        sa, sb = a ^ ndimage.binary_erosion(a, st), b ^ ndimage.binary_erosion(b, st)
        d1 = ndimage.distance_transform_edt(~sb, sampling=sp)[sa]
        d2 = ndimage.distance_transform_edt(~sa, sampling=sp)[sb]
        return max(np.percentile(d1, 95), np.percentile(d2, 95))

    sample = [s for s in ids if by_id[s].voxels_cand][:3]
    t3, hd = _t(lambda: [naive_surface(s) for s in sample])
    by_id = {r.structure_id: r for r in rows}
    same = all(abs(by_id[s].hd95_mm - h) < 1e-9 for s, h in zip(sample, hd))
    est = t3 / len(sample) * len(ids)
    res["QA-2"] = {"all_metrics_s": full_t, "naive_estimate_s": est, "speedup_estimate": est / full_t,
                   "naive_levels_timed": len(sample), "identical_hd95": same}
    print(f"QA-2 all metrics {full_t:.2f} s; naive per-label (3 timed, scaled to {len(ids)}) ~{est:.0f} s "
          f"({est / full_t:.0f}x), identical HD95: {same}")
    Path("bench_qa.json").write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

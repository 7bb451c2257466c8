"""On-demand benchmark: the hot paths, each in its own process (time and peak memory).

    .venv/bin/python benchmarks/bench_hot_paths.py [--before <old checkout>/src] [--no-inference]

With ``--before`` every measurement runs twice in the same run, on this checkout and on
the code of that folder (``before`` in the output), and the CPU inference benchmark
(``bench_cpu_inference.py``: bundled model end to end, windows/s) runs with the same
comparison unless ``--no-inference``.

Every measurement starts from files on disk loaded with ``load_case`` (display-order
views of the file's memory, as users have them), never from fresh arrays:

- export: verified ``export_labels`` of a 512x535x512 uint8 label volume (25 levels), with
  the default check (every segment decoded again) and with the byte check only, vs
  SimpleITK's unverified ``WriteImage`` with compression and ``nib.save`` at gzip level 1
  (time and file size), medians of 9 interleaved rounds;
- metrics: Dice, volumes and centroids (one pass) vs a per-label loop, at 9 M and 140 M
  voxels, and all metrics with HD95/MSD at 140 M, with the peak extra memory (VmHWM);
- shift: every level one step down, as a copy and in place, time and peak extra memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r'''
import json, os, statistics, sys, time
import numpy as np
kind, folder, n = sys.argv[1], sys.argv[2], int(sys.argv[3])

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024

def med(fn, k):
    out = []
    for _ in range(k):
        t0 = time.perf_counter(); fn(); out.append(time.perf_counter() - t0)
    return statistics.median(out)

from napari_spine import load_case
case = load_case(f"{folder}/ct{n}.nii.gz", f"{folder}/seg{n}.nii.gz")
lab = case.labels
res = {}
if kind == "export":
    from napari_spine import export_labels
    import nibabel as nib
    out = f"{folder}/out{n}.nii.gz"
    src = nib.load(f"{folder}/seg{n}.nii.gz")
    arr = np.asanyarray(src.dataobj)
    img = nib.Nifti1Image(arr, src.affine, src.header)
    runs = {
        "export": lambda: export_labels(case, lab, out),
        "export_bytes_verified": lambda: export_labels(case, lab, f"{folder}/outb{n}.nii.gz", verify="bytes"),
        "nib_l1": lambda: nib.save(img, f"{folder}/nib{n}.nii.gz"),
    }
    sizes = {"export": out, "export_bytes_verified": f"{folder}/outb{n}.nii.gz", "nib_l1": f"{folder}/nib{n}.nii.gz"}
    nib.openers.Opener.default_compresslevel = 1
    try:
        import SimpleITK as sitk
        im = sitk.ReadImage(f"{folder}/seg{n}.nii.gz")
        runs["sitk"] = lambda: sitk.WriteImage(im, f"{folder}/sitk{n}.nii.gz", True)
        sizes["sitk"] = f"{folder}/sitk{n}.nii.gz"
    except ImportError:
        pass
    times = {k: [] for k in runs}
    for _ in range(9):  # interleaved, so that a slow moment of the machine hits every writer
        for k, fn in runs.items():
            t0 = time.perf_counter(); fn(); times[k].append(time.perf_counter() - t0)
    for k in runs:
        res[f"{k}_s"] = statistics.median(times[k])
        res[f"{k}_mb"] = os.path.getsize(sizes[k]) / 1e6
        res[f"{k}_bytes"] = os.path.getsize(sizes[k])
elif kind in ("metrics", "metrics_surface", "loop"):
    from napari_spine.correction import relabel
    from napari_spine.qa import level_metrics
    cand_full = relabel(np.roll(np.ascontiguousarray(lab), 1, axis=1), "L2", "L3")
    # the candidate laid out like the reference (as a second file of the same grid is)
    cand = np.empty_like(lab)
    cand[...] = cand_full
    del cand_full
    base = status("VmRSS")
    open("/proc/self/clear_refs", "w").write("5")
    if kind == "loop":
        ids = [int(i) for i in np.unique(lab) if i]
        def loop():
            for sid in ids:
                a, b = lab == sid, cand == sid
                na, nb = int(a.sum()), int(b.sum())
                2 * int((a & b).sum()) / (na + nb)
        res["s"] = med(loop, 1)
    else:
        res["s"] = med(lambda: level_metrics(lab, cand, case.spacing, surface=kind == "metrics_surface"), 3)
    res["peak_extra_mb"] = status("VmHWM") - base
    res["labels_mb"] = lab.nbytes / 2**20
elif kind in ("shift_copy", "shift_in_place"):
    from napari_spine.correction import shift_levels
    work = lab  # the loaded view itself, as the panel shifts it
    base = status("VmRSS")
    open("/proc/self/clear_refs", "w").write("5")
    t0 = time.perf_counter()
    if kind == "shift_copy":
        shift_levels(work, -1)
    else:
        shift_levels(work, -1, in_place=True)
    res["s"] = time.perf_counter() - t0
    res["peak_extra_mb"] = status("VmHWM") - base
print("RESULT " + json.dumps(res))
'''


def _child(kind: str, folder: str, n: int, pythonpath: str | None = None) -> dict:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    proc = subprocess.run([sys.executable, "-c", CHILD, kind, folder, str(n)], capture_output=True, text=True,
                          timeout=1200, env=env)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        return {"error": (proc.stderr or proc.stdout)[-400:]}
    return json.loads(line[7:])


def _measure(tmp: str, sizes, before: str | None) -> dict:
    results: dict = {}
    results["export_140M"] = _child("export", tmp, 140, before)
    for n in sizes:
        results[f"metrics_{n}M"] = _child("metrics", tmp, n, before)
        results[f"loop_{n}M"] = _child("loop", tmp, n, before)
    results["metrics_surface_140M"] = _child("metrics_surface", tmp, 140, before)
    results["shift_copy_140M"] = _child("shift_copy", tmp, 140, before)
    results["shift_in_place_140M"] = _child("shift_in_place", tmp, 140, before)
    for n in sizes:
        m, lp = results[f"metrics_{n}M"], results[f"loop_{n}M"]
        if "s" in m and "s" in lp:
            m["speedup_vs_loop"] = lp["s"] / m["s"]
    return results


def main(argv=None) -> int:
    import argparse

    from napari_spine import make_phantom
    from napari_spine.synthetic import write_phantom

    ap = argparse.ArgumentParser()
    ap.add_argument("--before", help="src folder of the code to compare with (PYTHONPATH)")
    ap.add_argument("--no-inference", action="store_true")
    args = ap.parse_args(argv)
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        sizes = {9: (210, 210, 210), 140: (512, 535, 512)}
        for n, shape in sizes.items():
            case = make_phantom(shape, (0.7, 1.0, 0.7), levels=("C7", "S1"), axcodes="LPS", seed=0,
                                include_canal=False)
            write_phantom(case, f"{tmp}/ct{n}.nii.gz", f"{tmp}/seg{n}.nii.gz")
            del case
        t0 = time.perf_counter()
        results["now"] = _measure(tmp, sizes, None)
        if args.before:
            results["before"] = _measure(tmp, sizes, args.before)
        results["wall_s"] = time.perf_counter() - t0
    if not args.no_inference:
        sys.path.insert(0, str(Path(__file__).parent))
        import bench_cpu_inference

        bench_cpu_inference.main(["--before", args.before] if args.before else [])
        results["cpu_inference"] = json.loads(Path("bench_cpu_inference.json").read_text())
    print(json.dumps(results, indent=1))
    Path("bench_hot_paths.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""On-demand benchmark: the bundled model end to end on the CPU, before and after.

    .venv/bin/python benchmarks/bench_cpu_inference.py [--before <old checkout>/src]

Cases (written to NIfTI once, loaded with ``load_case`` in each run):

- ``mr``: an MR-T2 phantom of 512 x 268 x 512 at 0.7 x 2 x 0.7 mm (200 windows of 64^3 on
  the model's 2 mm grid), the body filling the field of view;
- ``ct_air``: a CT phantom of 160 x 200 x 160 at 1.5 mm with 120 voxels of air (scanner
  noise) added on one side, as a wide field of view has around a slim patient.

Each configuration runs in its own process: the current code with its defaults (two
windows a batch, empty windows skipped, float32), with batch 1, without skipping, with
bf16 (where the CPU has it), and the code of ``--before`` as it was. Reported: total
seconds, windows run and skipped, windows/s, the time to bring the logits back
(``finish_s``), and how the labels agree with the current default.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r'''
import json, sys, time
import numpy as np
import napari_spine
img, out, kwargs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
case = napari_spine.load_case(img)
model = napari_spine.load_model("default")
t0 = time.perf_counter()
pred = napari_spine.predict(case, model, "cpu", **kwargs)
total = time.perf_counter() - t0
np.save(out, pred.labels)
w = getattr(pred, "windows", {}) or {}
print("RESULT " + json.dumps({"total_s": total, "timings": pred.timings, "windows": w}))
'''


def _run(img: str, out: str, kwargs: dict, pythonpath: str | None = None) -> dict:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    proc = subprocess.run([sys.executable, "-c", CHILD, img, out, json.dumps(kwargs)],
                          capture_output=True, text=True, env=env, timeout=3600)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        return {"error": (proc.stderr or proc.stdout)[-600:]}
    return json.loads(line[7:])


def _cases(tmp: Path) -> dict[str, str]:
    import nibabel as nib
    import numpy as np

    import napari_spine
    from napari_spine.synthetic import write_phantom

    mr = napari_spine.make_phantom((512, 268, 512), (0.7, 2.0, 0.7), levels=("C2", "L5"),
                                   modality="MR-T2", seed=0)
    write_phantom(mr, tmp / "mr.nii.gz", tmp / "mr_seg.nii.gz")
    ct = napari_spine.make_phantom((160, 200, 160), (1.5, 1.5, 1.5), levels=("T10", "S1"), seed=1)
    rng = np.random.default_rng(2)
    air = np.clip(-1000 + rng.normal(0, 20, (120, *ct.shape[1:])), -1024, None).astype(ct.image.dtype)
    aff = ct.affine.copy()
    aff[:3, 3] -= aff[:3, 0] * 120
    nib.save(nib.Nifti1Image(np.concatenate([air, ct.image], 0), aff), str(tmp / "ct_air.nii.gz"))
    return {"mr": str(tmp / "mr.nii.gz"), "ct_air": str(tmp / "ct_air.nii.gz")}


def main(argv=None) -> int:
    import numpy as np

    from napari_spine.inference.predict import cpu_has_bf16

    ap = argparse.ArgumentParser()
    ap.add_argument("--before", help="src folder of the code to compare with (PYTHONPATH)")
    ap.add_argument("--cases", default="mr,ct_air")
    args = ap.parse_args(argv)
    configs = {"default": {}, "batch1": {"batch_size": 1}, "no_skip": {"skip_empty": False}}
    if cpu_has_bf16():
        configs["bf16"] = {"precision": "bf16"}
    results: dict = {"cores": len(os.sched_getaffinity(0))}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        cases = _cases(Path(tmp))
        for name in args.cases.split(","):
            img = cases[name]
            res: dict = {}
            runs = dict(configs)
            if args.before:
                runs["before"] = None
            for cfg, kwargs in runs.items():
                out = f"{tmp}/{name}_{cfg}.npy"
                r = _run(img, out, kwargs or {}, args.before if cfg == "before" else None)
                res[cfg] = r
            placed = res["default"].get("windows", {}).get("windows")
            for r in res.values():
                if "error" not in r:  # code without window counts ran every window
                    ran = (r.get("windows") or {}).get("run", placed)
                    r["windows_per_s"] = ran / r["timings"]["windows_s"] if ran else None
            ref = np.load(f"{tmp}/{name}_default.npy")
            for cfg in runs:
                path = Path(f"{tmp}/{name}_{cfg}.npy")
                if path.exists() and cfg != "default":
                    other = np.load(path)
                    res[cfg]["labels_equal_default"] = bool(np.array_equal(other, ref))
                    res[cfg]["voxels_differing"] = int((other != ref).sum())
                    fg = (ref > 0) | (other > 0)
                    res[cfg]["foreground_agreement"] = float((other[fg] == ref[fg]).mean()) if fg.any() else 1.0
                    if name == "ct_air":  # where they differ: in tissue (above -500 HU, 2 voxels around)?
                        from scipy import ndimage

                        from napari_spine import load_case

                        tissue = ndimage.binary_dilation(load_case(img).image > -500, iterations=2)
                        res[cfg]["voxels_differing_in_tissue"] = int(((other != ref) & tissue).sum())
            if "before" in res and "total_s" in res["before"]:
                res["speedup_vs_before"] = res["before"]["total_s"] / res["default"]["total_s"]
            results[name] = res
        results["wall_s"] = time.perf_counter() - t0
    print(json.dumps(results, indent=1))
    Path("bench_cpu_inference.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""On-demand benchmark: NIfTI load, label export and napari layer creation.

    .venv/bin/python benchmarks/bench_io.py [--size 512 512 535] [--repeat 3]

Every target is a ratio to a baseline measured in the same run on the same machine:
- IO-1  load_case(image)           vs  np.asanyarray(nib.load(p).dataobj) (indexed_gzip)
- IO-2  export_labels(...)         vs  nib.save(labels, level 1)  (ours also re-reads and verifies)
- NAP-1 adding the case's layers to a headless napari ViewerModel (absolute, <= 0.2 s, no copy)
Results go to bench_results.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np


def _median_time(fn, repeat):
    times = []
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", nargs=3, type=int, default=(512, 512, 535),
                    help="file shape (x, y, z), default 512 512 535")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default="bench_results.json")
    args = ap.parse_args(argv)

    from napari_spine import export_labels, load_case, make_phantom
    from napari_spine.synthetic import write_phantom

    nx, ny, nz = args.size
    tmp = Path(tempfile.mkdtemp(prefix="napari-spine-bench-"))
    t0 = time.perf_counter()
    # display order is (L-R, S-I, A-P); the file is stored LPS like a DICOM-derived CT
    case = make_phantom((nx, nz, ny), (0.7, 1.0, 0.7), levels=("T6", "S1"), axcodes="LPS", seed=0)
    ip, lp = write_phantom(case, tmp / "ct.nii.gz", tmp / "ct_seg.nii.gz")
    gen = time.perf_counter() - t0
    raw_mb = case.image.nbytes / 1e6
    print(f"phantom {nib.load(ip).shape} int16 ({raw_mb:.1f} MB raw) generated and written in {gen:.1f} s")

    results = {"shape": list(nib.load(ip).shape), "raw_MB": raw_mb, "python": sys.version.split()[0]}

    # warm the page cache
    np.asanyarray(nib.load(ip).dataobj)

    base, _ = _median_time(lambda: np.asanyarray(nib.load(ip).dataobj), args.repeat)
    ours, loaded = _median_time(lambda: load_case(ip), args.repeat)
    assert loaded.image.dtype == np.int16
    results["IO-1"] = {"baseline_s": base, "load_case_s": ours, "ratio": ours / base,
                       "target": "<= 1.10 (stretch <= 0.75)"}
    print(f"IO-1 load      nibabel+indexed_gzip {base:.3f} s | load_case {ours:.3f} s | ratio {ours / base:.2f}")

    labels = load_case(ip, lp)
    lab_file = np.asanyarray(nib.load(lp).dataobj)

    def nib_save():
        img = nib.Nifti1Image(lab_file, nib.load(lp).affine, nib.load(lp).header)
        nib.save(img, tmp / "base_seg.nii.gz")

    base, _ = _median_time(nib_save, args.repeat)
    ours, res = _median_time(lambda: export_labels(labels, labels.labels, tmp / "ours_seg.nii.gz"),
                             args.repeat)
    results["IO-2"] = {"baseline_s": base, "export_labels_s": ours, "ratio": ours / base,
                       "target": "<= 1.0", "note": "export_labels includes re-read verification",
                       "size_MB": (tmp / "ours_seg.nii.gz").stat().st_size / 1e6,
                       "baseline_size_MB": (tmp / "base_seg.nii.gz").stat().st_size / 1e6}
    print(f"IO-2 export    nib.save L1 {base:.3f} s | export_labels (verified) {ours:.3f} s | ratio {ours / base:.2f}")

    try:
        from napari.components import ViewerModel

        from napari_spine._napari._layers import case_to_layer_data

        def add_layers():
            vm = ViewerModel()
            for data, kw, kind in case_to_layer_data(labels):
                getattr(vm, f"add_{kind}")(data, **kw)
            return vm

        add_layers()  # imports and first-call costs
        t, vm = _median_time(add_layers, args.repeat)
        copy_free = np.shares_memory(vm.layers[0].data, labels.image) and np.shares_memory(
            vm.layers[1].data, labels.labels)
        results["NAP-1"] = {"add_layers_s": t, "target_s": 0.2, "no_full_volume_copy": bool(copy_free),
                            "labels_dtype": str(vm.layers[1].data.dtype)}
        print(f"NAP-1 layers   {t:.3f} s (target <= 0.2 s), no copy: {copy_free}, labels {vm.layers[1].data.dtype}")
    except ImportError:
        print("NAP-1 skipped: napari not installed")

    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

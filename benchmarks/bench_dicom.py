"""On-demand benchmark: opening a DICOM series vs dcm2niix converting it, same run.

    .venv/bin/python benchmarks/bench_dicom.py

A 512 x 512 x 300 CT series (one uncompressed file per slice, 16-bit, rescale intercept
-1024), written with pydicom; ``load_case(folder)`` (scan, sort, rescale, the volume in
dcm2niix's layout) against ``dcm2niix -z n`` writing its NIfTI, medians of 5 interleaved
rounds after one warm-up each (the files in the page cache for both). Target <= 1.5x.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from napari_spine import load_case
    from test_dicom import DCM2NIIX, write_series

    rng = np.random.default_rng(0)
    vol = rng.integers(0, 2000, (512, 512, 300)).astype(np.uint16)
    res: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "series"
        write_series(folder, vol, (1, 0, 0), (0, 1, 0), (0, 0, 1.0), (0, 0, 0), spacing=(0.7, 0.7))

        def convert():
            out = Path(tempfile.mkdtemp(dir=tmp))
            subprocess.run([DCM2NIIX, "-z", "n", "-b", "n", "-o", str(out), str(folder)], check=True,
                           capture_output=True)
            shutil.rmtree(out)

        runs = {"load_case": lambda: load_case(folder), "dcm2niix": convert}
        times: dict = {k: [] for k in runs}
        for fn in runs.values():
            fn()
        for _ in range(5):
            for k, fn in runs.items():
                t0 = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
        for k, v in times.items():
            res[f"{k}_s"] = statistics.median(v)
        res["ratio"] = res["load_case_s"] / res["dcm2niix_s"]
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""On-demand benchmark: batch QA + export (and predict) over 8 CT cases of clinical size.

    .venv/bin/python benchmarks/bench_batch.py [--predict] [--cases 8]

Same run, same synthetic CTSpine1K-layout dataset (512 x 512 x 300 int16 CTs at
0.7 x 0.7 x 1 mm with 25-level labels):

- BATCH-1 speed-up: ``napari-spine batch`` with 2 Dask workers vs 1 worker on this
  2-core machine (target >= 1.6x), for ``qa`` and ``export`` (and ``predict`` with the
  bundled model when ``--predict`` is given).
- BATCH-2 orchestration overhead: the 1-worker Dask run and the in-process run
  (``--workers 0``) vs a plain Python loop over the same core functions (load_case,
  validate_sequence / export_labels) without fingerprints, logs or Dask (target <= 20 %).
- BATCH-3 peak memory per worker process (``ru_maxrss``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path


def main(argv=None) -> int:
    import numpy as np

    import napari_spine as ns
    from napari_spine import batch
    from napari_spine.correction import validate_sequence
    from napari_spine.synthetic import write_phantom
    from napari_spine.testing.trees import _native

    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=8)
    ap.add_argument("--predict", action="store_true")
    ap.add_argument("--predict-cases", type=int, default=4,
                    help="cases for the predict comparison (about 40 s each on 2 CPU cores)")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    root = tmp / "CTSpine1K"
    vol, lab = root / "raw_data" / "volumes" / "COLONOG", root / "raw_data" / "labels" / "COLONOG"
    vol.mkdir(parents=True)
    lab.mkdir(parents=True)
    t0 = time.perf_counter()
    for i in range(args.cases):
        case = ns.make_phantom((512, 300, 512), (0.7, 1.0, 0.7), levels=("T9", "L5"), seed=i,
                               axcodes="LPS", include_canal=False)
        case = case.with_labels(_native(case.labels, "ctspine1k"))
        write_phantom(case, vol / f"case{i:02d}.nii.gz", lab / f"case{i:02d}_seg.nii.gz")
    print(f"{args.cases} cases 512x512x300 written in {time.perf_counter() - t0:.0f} s ({tmp})")
    quiet = lambda m: None  # noqa: E731
    res: dict = {}

    def timed(fn):
        t = time.perf_counter()
        out = fn()
        return time.perf_counter() - t, out

    ds = ns.open_dataset(root)

    def plain(command):
        out = tmp / f"plain-{command}"
        out.mkdir()
        for ref in ds.cases:
            case = ns.load_case(ref)
            if command == "export":
                ns.export_labels(case, case.labels, out / f"{ref.case_id}.nii.gz", scheme="native")
            else:
                f = validate_sequence(case.labels, case.spacing)
                (out / f"{ref.case_id}.json").write_text(json.dumps([x.message for x in f]))

    def cluster_start_stop():
        from napari_spine.batch.cluster import local_cluster as _local_cluster

        client, cluster = _local_cluster(1, False)
        client.close()
        cluster.close()

    t_cluster, _ = timed(cluster_start_stop)
    res["cluster_start_stop_s"] = t_cluster
    print(f"a 1-worker LocalCluster starts and stops in {t_cluster:.2f} s")
    commands = ["qa", "export"] + (["predict"] if args.predict else [])
    for command in commands:
        runs = {}
        ids = [c.case_id for c in ds.cases][: args.predict_cases] if command == "predict" else ()
        for label, workers in (("workers=0", 0), ("workers=1", 1), ("workers=2", 2)):
            out = tmp / f"{command}-{label}"
            t, r = timed(lambda c=command, o=out, w=workers, i=ids: batch.run(
                c, root, o, workers=w, progress=quiet, device="cpu", case_ids=i))
            assert r.ok, r.failed
            runs[label] = (t, r)
        entry = {k: round(v[0], 2) for k, v in runs.items()}
        entry["cases"] = len(runs["workers=0"][1].rows)
        entry["speedup_2_vs_1"] = runs["workers=1"][0] / runs["workers=2"][0]
        entry["peak_rss_mb_per_worker"] = max(row.get("peak_rss_mb", 0) for row in runs["workers=2"][1].rows
                                              if "peak_rss_mb" in row)
        if command != "predict":
            tp, _ = timed(lambda c=command: plain(c))
            entry["plain_loop_s"] = round(tp, 2)
            entry["overhead_1_worker"] = runs["workers=1"][0] / tp - 1
            entry["overhead_1_worker_after_start"] = (runs["workers=1"][0] - t_cluster) / tp - 1
            entry["overhead_in_process"] = runs["workers=0"][0] / tp - 1
        res[command] = entry
        print(command, json.dumps({k: (round(v, 3) if isinstance(v, float) else v)
                                   for k, v in entry.items()}))
        # identical outputs whatever the worker count
        a = (tmp / f"{command}-workers=1" / "summary.csv").read_bytes()
        b = (tmp / f"{command}-workers=2" / "summary.csv").read_bytes()
        assert a == b, "summaries differ between 1 and 2 workers"
    out = Path(__file__).with_name("results_batch.json")
    out.write_text(json.dumps(res, indent=1, default=float))
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"results in {out}")
    del np
    return 0


if __name__ == "__main__":
    sys.exit(main())

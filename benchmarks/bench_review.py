"""On-demand benchmark: review-database throughput on both back ends, same run.

    .venv/bin/python benchmarks/bench_review.py [--seconds 20] [--workers 8] [--cases 20]

N processes claim the next case, update it and hand it back, on the same 20 cases, for
the given time: once on an SQLite file (WAL, local disk), once on a throw-away PostgreSQL
server on the loopback (started here with ``initdb``/``pg_ctl``; ``fsync=off``, so the
number is the locking and round-trip cost, not the disk's). Reports claims+updates per
second and the ratio PostgreSQL / SQLite; every run is checked for lost updates.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def _run(location: str, workers: int, seconds: float, cases: int) -> float:
    from napari_spine.qa.review import ReviewDB

    db = ReviewDB(location)
    db.add_cases((f"b/c{i:02d}", "b", f"c{i:02d}", float(i)) for i in range(cases))
    cmd = [sys.executable, "-m", "napari_spine.testing.review_workers", "churn", location]
    procs = [subprocess.Popen(cmd + [f"w{i}", str(seconds)], stdout=subprocess.PIPE, text=True)
             for i in range(workers)]
    claims = [json.loads(p.communicate()[0]) for p in procs]
    if any(p.returncode for p in procs):
        raise SystemExit(f"{db.kind}: a worker failed")
    n = sum(map(len, claims))
    if sum(int(c.comment or 0) for c in db.queue()) != n:
        raise SystemExit(f"{db.kind}: lost updates")
    db.close()
    return n / seconds


def main(argv=None) -> int:
    """Print claims/s on each back end and their ratio."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--cases", type=int, default=20)
    a = ap.parse_args(argv)
    from napari_spine.testing.postgres import TempCluster

    with tempfile.TemporaryDirectory() as tmp:
        sq = _run(str(Path(tmp) / "review.sqlite"), a.workers, a.seconds, a.cases)
    cluster = TempCluster()
    os.environ["PGPASSFILE"] = str(cluster.pgpass)
    try:
        pg = _run(cluster.new_database(), a.workers, a.seconds, a.cases)
    finally:
        cluster.stop()
    print(f"REVIEW-1 {a.workers} processes x {a.seconds:.0f} s on {a.cases} cases: "
          f"SQLite {sq:.0f} claims/s, PostgreSQL {pg:.0f} claims/s (ratio {pg / sq:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

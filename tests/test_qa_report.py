import csv
import zlib

import numpy as np

from napari_spine import make_phantom
from napari_spine.correction import relabel
from napari_spine.qa import level_metrics
from napari_spine.qa.report import (
    CaseResult,
    mid_sagittal_snapshot,
    png_bytes,
    write_csv,
    write_html,
)


def test_png_encoder_roundtrip():
    img = (np.arange(4 * 5 * 3) % 256).astype(np.uint8).reshape(4, 5, 3)
    data = png_bytes(img)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    idat = data[data.index(b"IDAT") + 4 : data.index(b"IEND") - 8]
    raw = zlib.decompress(idat)
    rows = [raw[i * 16 + 1 : (i + 1) * 16] for i in range(4)]
    assert np.array_equal(np.frombuffer(b"".join(rows), np.uint8).reshape(4, 5, 3), img)


def test_csv_and_html_report(tmp_path):
    results = []
    for i in range(3):
        case = make_phantom((16, 96, 64), levels=("L1", "L4"), seed=i)
        cand = relabel(case.labels, "L2", 0) if i == 1 else case.labels
        rows = level_metrics(case.labels, cand, case.spacing)
        snap = mid_sagittal_snapshot(case.image, case.labels, cand, case.spacing, window=(-500, 1300))
        results.append(CaseResult(f"ph/{i}", rows, status="approved" if i != 1 else "needs correction",
                                  reviewer="ana", flags={21: (True, "L2 missing")} if i == 1 else {},
                                  snapshot_png=snap))
    c = write_csv(results, tmp_path / "qa.csv")
    table = list(csv.DictReader(open(c)))
    assert len(table) == sum(len(r.rows) for r in results)
    l2 = [t for t in table if t["case_key"] == "ph/1" and t["name"] == "L2"][0]
    assert l2["dice"] == "0" and l2["flag"] == "1" and l2["comment"] == "L2 missing"
    h = write_html(results, tmp_path / "qa.html").read_text()
    assert "<svg" in h and h.count("data:image/png;base64,") == 3
    assert h.index("ph/1") < h.index("ph/0")  # the worst case comes first
    assert "L2 missing" in h and "needs correction" in h

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


def _chromium():
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_renders_with_sources_and_no_nan_or_empty_table(tmp_path):
    import re
    import subprocess

    import pytest

    browser = _chromium()
    if browser is None:
        pytest.skip("headless Chromium (Debian 'chromium') is not installed")
    case = make_phantom((24, 128, 96), levels=("L1", "L4"), include_canal=False)
    cand = relabel(case.labels, "L3", 0)
    rows = level_metrics(case.labels, cand, case.spacing)
    snap = mid_sagittal_snapshot(case.image, case.labels, cand, case.spacing)
    results = [
        CaseResult("ds/a", rows, "needs correction", "ana", "L3 missed", {22: (True, "missed")}, snap,
                   reference="ds/a labels (a_seg.nii.gz)", candidate="prediction.nii.gz (bundled model)",
                   when=1.7e9, findings=("candidate is shifted by +1 level (L3 labelled L4)",)),
        CaseResult("ds/b", [], "to do"),  # queued, never compared
    ]
    page = write_html(results, tmp_path / "r.html", title="napari-spine qa: ctspine1k")
    text = page.read_text()
    for table in re.findall(r"<table>.*?</table>", text, re.S):
        assert table.count("<tr") >= 2, "an empty table"
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    visible = re.sub(r"<[^>]+>", " ", re.sub(r"<(style|title)>.*?</\1>", " ", dom, flags=re.S))
    assert "nan" not in visible.lower().split() and "nan" not in visible.lower()
    assert "a_seg.nii.gz" in visible and "bundled model" in visible and "ana" in visible
    assert "Not compared yet" in visible and "ds/b" in visible
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1200,1600", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    import imageio.v3 as iio

    img = iio.imread(shot)[..., :3].astype(int)
    ink = (img.sum(axis=2) < 600).mean()  # dark text and plot pixels on the white page
    colour = (np.ptp(img, axis=2) > 60).mean()  # the coloured plot bars and the snapshot
    assert ink > 0.005 and colour > 0.002, (ink, colour)

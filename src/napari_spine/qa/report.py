"""QA reports: a per-level CSV and a self-contained HTML page a QA lead can send on.

The HTML embeds everything (inline SVG plot, base64 PNG snapshots), so it opens anywhere
without the data. The PNG writer is a few lines of zlib rather than an imaging
dependency in the core.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..anatomy import ontology
from ..io.files import write_bytes_atomic
from .metrics import LevelRow, identification_rate
from .overlay import DISAGREEMENT_COLORS, disagreement_map

__all__ = ["CaseResult", "mid_sagittal_snapshot", "png_bytes", "write_csv", "write_html"]

CSV_FIELDS = ("case_key", "status", "reviewer", "structure_id", "name", "dice", "hd95_mm", "msd_mm",
              "volume_ref_ml", "volume_cand_ml", "volume_diff_ml", "centroid_dist_mm", "identified", "flag",
              "comment")


@dataclass
class CaseResult:
    """One reviewed case for the report."""

    case_key: str
    rows: Sequence[LevelRow]
    status: str = "to do"
    reviewer: str = ""
    comment: str = ""
    flags: Mapping[int, tuple[bool, str]] = field(default_factory=dict)
    snapshot_png: bytes | None = None
    #: where the compared labellings came from (a file, a layer, a model) and when
    reference: str = ""
    candidate: str = ""
    when: float | None = None
    findings: Sequence[str] = ()

    @property
    def mean_dice(self) -> float:
        """Mean Dice over the case's levels (NaN without levels)."""
        d = [r.dice for r in self.rows]
        return float(np.mean(d)) if d else math.nan

    @property
    def compared(self) -> bool:
        """Whether the case has level metrics (it was compared)."""
        return bool(self.rows)


def write_csv(results: Sequence[CaseResult], path: str | Path) -> Path:
    """One row per case and level (atomic write)."""
    target = Path(path)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for res in results:
        for r in res.rows:
            flag, comment = res.flags.get(r.structure_id, (False, ""))
            w.writerow({"case_key": res.case_key, "status": res.status, "reviewer": res.reviewer,
                        "structure_id": r.structure_id, "name": r.name, "dice": _num(r.dice),
                        "hd95_mm": _num(r.hd95_mm), "msd_mm": _num(r.msd_mm),
                        "volume_ref_ml": _num(r.volume_ref_ml), "volume_cand_ml": _num(r.volume_cand_ml),
                        "volume_diff_ml": _num(r.volume_diff_ml), "centroid_dist_mm": _num(r.centroid_dist_mm),
                        "identified": "" if r.identified is None else int(r.identified),
                        "flag": int(flag), "comment": comment})
    write_bytes_atomic(target, buf.getvalue().encode("utf-8"))
    return target


def _num(v: float) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.6g}"


def png_bytes(rgb: np.ndarray) -> bytes:
    """Encode an (H, W, 3) uint8 image as PNG (zlib, no filter)."""
    a = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = a.shape[:2]
    raw = b"".join(b"\x00" + a[y].tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def mid_sagittal_snapshot(image: np.ndarray, reference: np.ndarray, candidate: np.ndarray,
                          spacing: Sequence[float] = (1.0, 1.0, 1.0), window: tuple[float, float] | None = None,
                          max_size: int = 360) -> bytes:
    """PNG of the mid-sagittal slice: image in grey, agreement in the anatomy colours, missed
    blue, extra red, mislabelled yellow (display order: superior up, anterior left)."""
    k = image.shape[0] // 2
    img = np.asarray(image[k], dtype=np.float32)
    lo, hi = window if window is not None else np.percentile(img, [1, 99.5])
    g = np.clip((img - lo) / max(hi - lo, 1e-6), 0, 1)
    rgb = np.repeat(g[..., None], 3, axis=2)
    ref, cand = np.asarray(reference[k]), np.asarray(candidate[k])
    lut = np.zeros((256, 3), np.float32)
    for s in ontology.STRUCTURES:
        lut[s.id] = s.color[:3]
    agree = (ref == cand) & (ref > 0)
    rgb[agree] = 0.5 * rgb[agree] + 0.5 * lut[ref[agree]]
    dis = disagreement_map(ref, cand)
    for value, color in DISAGREEMENT_COLORS.items():
        if value:
            sel = dis == value
            rgb[sel] = 0.4 * rgb[sel] + 0.6 * np.array(color[:3])
    # physical aspect ratio (rows: spacing[1], columns: spacing[2]) by nearest-neighbour resize
    h_mm, w_mm = rgb.shape[0] * spacing[1], rgb.shape[1] * spacing[2]
    scale = max_size / max(h_mm, w_mm)
    h, w = max(1, int(round(h_mm * scale))), max(1, int(round(w_mm * scale)))
    rows = np.minimum((np.arange(h) / h * rgb.shape[0]).astype(int), rgb.shape[0] - 1)
    cols = np.minimum((np.arange(w) / w * rgb.shape[1]).astype(int), rgb.shape[1] - 1)
    return png_bytes((rgb[rows][:, cols] * 255).astype(np.uint8))


def _svg_dice_per_level(results: Sequence[CaseResult]) -> str:
    per: dict[int, list[float]] = {}
    for res in results:
        for r in res.rows:
            per.setdefault(r.structure_id, []).append(r.dice)
    ids = ontology.sort_cranio_caudal(per)
    if not ids:
        return "<p>No levels.</p>"
    bw, gap, height, left = 26, 6, 200, 40
    width = left + len(ids) * (bw + gap) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 60}" '
             'font-family="sans-serif" font-size="10">']
    for t in (0, 0.5, 1.0):
        y = 10 + height * (1 - t)
        parts.append(f'<line x1="{left}" x2="{width}" y1="{y}" y2="{y}" stroke="#ccc"/>'
                     f'<text x="4" y="{y + 3}">{t:.1f}</text>')
    for k, sid in enumerate(ids):
        vals = np.array(per[sid], dtype=float)
        m, sd = float(np.mean(vals)), float(np.std(vals))
        x = left + k * (bw + gap)
        r, g, b = (int(c * 255) for c in ontology.color_of(sid)[:3]) if sid in ontology.BY_ID else (150, 150, 150)
        y = 10 + height * (1 - m)
        parts.append(f'<rect x="{x}" y="{y:.1f}" width="{bw}" height="{height * m:.1f}" fill="rgb({r},{g},{b})">'
                     f'<title>{html.escape(ontology.name_of(sid))}: mean {m:.3f}, sd {sd:.3f}, n {len(vals)}</title></rect>')
        y1, y2 = 10 + height * (1 - min(m + sd, 1)), 10 + height * (1 - max(m - sd, 0))
        parts.append(f'<line x1="{x + bw / 2}" x2="{x + bw / 2}" y1="{y1:.1f}" y2="{y2:.1f}" stroke="black"/>')
        parts.append(f'<text x="{x + 2}" y="{height + 24}" transform="rotate(45 {x + 2} {height + 24})">'
                     f'{html.escape(ontology.name_of(sid))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _when(t: float | None) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else "not yet"


def _sources(res: CaseResult) -> str:
    esc = html.escape
    parts = [f"reference: {esc(res.reference or 'not recorded')}",
             f"candidate: {esc(res.candidate or 'not recorded')}",
             f"reviewer: {esc(res.reviewer or 'none yet')}", f"compared: {_when(res.when)}"]
    return "<p class='src'>" + "; ".join(parts) + "</p>"


def _level_summary(results: Sequence[CaseResult]) -> str:
    """One row per level across the compared cases: mean and worst Dice, identification."""
    per: dict[int, list[LevelRow]] = {}
    for res in results:
        for r in res.rows:
            per.setdefault(r.structure_id, []).append(r)
    out = ["<table><tr><th>level</th><th>cases</th><th>mean Dice</th><th>worst Dice</th>"
           "<th>identified</th></tr>"]
    for sid in ontology.sort_cranio_caudal(per):
        rows = per[sid]
        dice = [r.dice for r in rows]
        idn = [r.identified for r in rows if r.identified is not None]
        ident = f"{sum(idn)}/{len(idn)}" if idn else "&ndash;"
        out.append(f"<tr><td class='l'>{html.escape(ontology.name_of(sid))}</td><td>{len(rows)}</td>"
                   f"<td>{np.mean(dice):.3f}</td><td>{min(dice):.3f}</td><td>{ident}</td></tr>")
    out.append("</table>")
    return "".join(out)


def _case_table(res: CaseResult) -> str:
    esc = html.escape
    out = ["<table><tr><th>level</th><th>Dice</th><th>HD95 mm</th><th>MSD mm</th><th>vol. diff mL</th>"
           "<th>centroid mm</th><th>identified</th><th>flag</th></tr>"]
    rank = {sid: k for k, sid in enumerate(ontology.sort_cranio_caudal([r.structure_id for r in res.rows]))}
    for r in sorted(res.rows, key=lambda x: rank[x.structure_id]):
        flag, comment = res.flags.get(r.structure_id, (False, ""))
        cls = " class='bad'" if r.dice < 0.8 else ""
        ident_s = "" if r.identified is None else ("yes" if r.identified else "no")
        out.append(f"<tr{cls}><td class='l'>{esc(r.name)}</td><td>{r.dice:.3f}</td><td>{_num(r.hd95_mm)}</td>"
                   f"<td>{_num(r.msd_mm)}</td><td>{r.volume_diff_ml:+.2f}</td><td>{_num(r.centroid_dist_mm)}</td>"
                   f"<td>{ident_s}</td><td class='flag'>{'&#9873; ' + esc(comment) if flag else ''}</td></tr>")
    out.append("</table>")
    return "".join(out)


def write_html(results: Sequence[CaseResult], path: str | Path, *, title: str = "Spine QA report",
               worst: int = 5) -> Path:
    """Self-contained HTML: summary with sources and dates, Dice per level across cases,
    the worst compared cases with snapshots, each compared case's table in anatomical
    order; cases not compared yet are listed, never shown as empty tables or "nan"."""
    import time

    target = Path(path)
    esc = html.escape
    done = [r for r in results if r.compared]
    statuses: dict[str, int] = {}
    for r in results:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    all_rows = [row for res in done for row in res.rows]
    reviewers = sorted({r.reviewer for r in results if r.reviewer})
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title><style>"
           "body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0}"
           "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#eee}"
           "td.l{text-align:left}.bad{background:#fdd}.flag{color:#b00;font-weight:bold}"
           ".src{color:#555;font-size:90%}</style></head><body>",
           f"<h1>{esc(title)}</h1>",
           f"<p>Written {_when(time.time())}. {len(results)} cases, {len(done)} compared; "
           + ", ".join(f"{esc(k)}: {v}" for k, v in sorted(statuses.items())) + ". "
           + f"Reviewers: {esc(', '.join(reviewers)) if reviewers else 'none yet'}.</p>"]
    if all_rows:
        out.append(f"<p>Mean Dice over all compared levels {np.mean([r.dice for r in all_rows]):.3f}; "
                   f"identification rate {_rate(identification_rate(all_rows))}.</p>")
        out += ["<h2>Dice per level across cases (mean, bar = 1 sd)</h2>", _svg_dice_per_level(done),
                "<h2>Per level</h2>", _level_summary(done)]
        ranked = sorted(done, key=lambda r: r.mean_dice)[:worst]
        out.append(f"<h2>Worst {len(ranked)} compared cases</h2>")
        for res in ranked:
            out.append(f"<h3>{esc(res.case_key)} &mdash; mean Dice {res.mean_dice:.3f} ({esc(res.status)})</h3>")
            out.append(_sources(res))
            out += [f"<p>{esc(f)}</p>" for f in res.findings]
            if res.comment:
                out.append(f"<p>{esc(res.comment)}</p>")
            if res.snapshot_png:
                b64 = base64.b64encode(res.snapshot_png).decode()
                out.append(f"<img alt='mid-sagittal slice of {esc(res.case_key)}' src='data:image/png;base64,{b64}'>"
                           "<p>Mid-sagittal slice: blue = missed, red = extra, yellow = mislabelled.</p>")
        out.append("<h2>Compared cases</h2>")
        for res in done:
            out += [f"<h3>{esc(res.case_key)} ({esc(res.status)})</h3>", _sources(res), _case_table(res)]
    pending = [r for r in results if not r.compared]
    if pending:
        out.append("<h2>Not compared yet</h2><ul>" + "".join(
            f"<li>{esc(r.case_key)} ({esc(r.status)}{', ' + esc(r.comment) if r.comment else ''})</li>"
            for r in pending) + "</ul>")
    out.append("</body></html>")
    write_bytes_atomic(target, "\n".join(out).encode("utf-8"))
    return target


def _rate(v: float) -> str:
    return "&ndash;" if math.isnan(v) else f"{v:.3f}"

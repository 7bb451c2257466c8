"""On-demand benchmark: what reading a file's own label names adds to loading it.

    .venv/bin/python benchmarks/bench_label_names.py [--size 512 512 535] [--repeat 5]

Two label files are each loaded twice, interleaved, in the same run:
- NAMES-1  a TotalSegmentator-style file (117 named classes in its header extension):
           load_labels_file(path)  (names read, scheme built)  vs  the same scheme given
- NAMES-2  a silent VerSe-numbered file (no names): load_labels_file(path)  (sidecars looked
           for, scheme guessed and checked for anatomical plausibility)  vs  "verse" given
Target: each ratio <= 1.05.
- NAMES-3  the header label-table scanner on 1 MiB of text, a real-looking table and crafted
           ones (unclosed elements, tags, CDATA): target < 0.1 s each.
Results go to bench_label_names.json.
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


def _file(folder: Path, size) -> Path:
    from napari_spine.anatomy.labelmaps import get_label_map

    names = dict(get_label_map("totalseg_total").native_names)
    names.update({i: f"organ_{i}" for i in range(1, 118) if i not in names})
    rows = "\n".join(f'<Label Key="{k}" Red="0.5" Green="0.5" Blue="0.5" Alpha="1"><![CDATA[{v}]]></Label>'
                     for k, v in sorted(names.items()))
    xml = f"<CaretExtension><VolumeInformation><LabelTable>\n{rows}\n</LabelTable></VolumeInformation></CaretExtension>"
    data = np.zeros(size, np.uint8)
    z = np.linspace(0, size[2], 27).astype(int)
    for k, lev in enumerate(range(26, 51)):  # 25 vertebrae stacked along z, organs beside them
        data[size[0] // 3: size[0] // 2, size[1] // 3: size[1] // 2, z[k]: z[k + 1] - 1] = lev
    data[: size[0] // 4, : size[1] // 4, :] = 5  # a liver-sized block
    img = nib.Nifti1Image(data, np.diag([0.8, 0.8, 1.0, 1.0]))
    img.header.extensions.append(nib.nifti1.Nifti1Extension(0, xml.encode()))
    path = folder / "total.nii.gz"
    nib.save(img, str(path))
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", nargs=3, type=int, default=(512, 512, 535))
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    from napari_spine.io.nifti import load_labels_file

    with tempfile.TemporaryDirectory() as tmp:
        named = _file(Path(tmp), tuple(args.size))
        silent = Path(tmp) / "spine_seg.nii.gz"
        img = nib.load(named)
        data = np.asarray(img.dataobj).copy()
        data[data == 5] = 0
        data[data > 0] = 51 - data[data > 0]  # TotalSegmentator 26-50 -> VerSe 25-1
        nib.save(nib.Nifti1Image(data, img.affine), str(silent))
        result = {"size": list(args.size)}
        for key, path in (("names", named), ("guess", silent)):
            scheme = load_labels_file(path).label_scheme  # the scheme the names or the guess give
            load_labels_file(path, label_scheme=scheme)  # warm the page cache
            auto, given = [], []
            for _ in range(args.repeat):  # interleaved: both see the same machine state
                t0 = time.perf_counter()
                load_labels_file(path)
                auto.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                load_labels_file(path, label_scheme=scheme)
                given.append(time.perf_counter() - t0)
            a, g = statistics.median(auto), statistics.median(given)
            result[key] = {"auto_s": a, "given_s": g, "ratio": a / g}
    for tag, key, what in (("NAMES-1", "names", "reading header names"),
                           ("NAMES-2", "guess", "guessing + plausibility")):
        r = result[key]
        print(f"{tag} {what}: {r['auto_s']:.3f} s vs scheme given {r['given_s']:.3f} s "
              f"= {r['ratio']:.3f}x (target <= 1.05)")
    result["scan"] = _scan()
    for kind, sec in result["scan"].items():
        print(f"NAMES-3 header label-table scan, 1 MiB {kind}: {sec * 1000:.1f} ms (target < 100 ms)")
    Path("bench_label_names.json").write_text(json.dumps(result, indent=1))
    return 0


def _scan() -> dict[str, float]:
    """The header label-table scanner on 1 MiB of text: a real-looking table and the crafted
    ones that took quadratic time before (unclosed elements, tags and CDATA sections)."""
    from napari_spine.anatomy.labelnames import _parse_label_xml

    mib = 1 << 20
    texts = {
        "table": "".join(f"<Label Key='{i % 250}' Red='0.1' Green='0.2' Blue='0.3'>name {i}</Label>"
                         for i in range(mib // 60)),
        "unclosed elements": "<Label Key='1'>" * (mib // 15),
        "unclosed tags": "<Label Key='1'>" + "<" * mib + "</Label>",
        "unclosed CDATA": "<Label Key='1'>" + "<![CDATA[" * (mib // 9) + "</Label>",
    }
    out = {}
    for kind, text in texts.items():
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            _parse_label_xml(text, "bench")
            times.append(time.perf_counter() - t0)
        out[kind] = min(times)
    return out


if __name__ == "__main__":
    sys.exit(main())

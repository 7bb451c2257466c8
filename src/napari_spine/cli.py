"""Command line: ``napari-spine`` opens the viewer; ``napari-spine info`` describes files.

``main(argv)`` returns an exit code and is tested in-process.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]


def _view_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="napari-spine",
        description="Spine CT/MRI viewer, labels and QA. Opens napari with the napari-spine "
        "widgets and the given files, or a sample phantom. Other commands: "
        "'napari-spine info IMAGE [LABELS]'.",
    )
    p.add_argument("paths", nargs="*", help="NIfTI images or segmentations to open")
    p.add_argument("--sample", choices=("ct", "mr", "none"), default=None,
                   help="sample phantom to open when no path is given (default: ct)")
    p.add_argument("--screenshot", metavar="PNG",
                   help="save a screenshot of the whole window and exit")
    return p


def _info_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="napari-spine info",
        description="Describe a NIfTI case: shape, spacing, orientation and labelled structures.",
    )
    p.add_argument("image", help="a NIfTI file, a dataset folder, a dataset file or archive")
    p.add_argument("labels", nargs="?", help="segmentation of IMAGE (NIfTI)")
    p.add_argument("--scheme", default=None, help="label scheme of the labels file")
    p.add_argument("--json", action="store_true", help="print JSON")
    return p


def _case_doc(case) -> dict:
    from . import ontology

    return {
        "case_id": case.case_id,
        "dataset": case.dataset,
        "modality": case.modality,
        "shape_file": list(case.source.shape),
        "shape_display": list(case.shape),
        "spacing_mm": list(case.spacing),
        "file_orientation": "".join(case.source.axcodes),
        "oblique_deg": round(case.source.obliquity_deg, 3),
        "dtype": str(case.image.dtype),
        "label_scheme": case.label_scheme if case.labels is not None else None,
        "structures": [ontology.display_name(i, case.structures_present)
                       for i in case.structures_present],
        "landmarks": len(case.landmarks) if case.landmarks is not None else 0,
        "warnings": list(case.warnings),
    }


def _info(args) -> int:
    from .datasets import detect, open_dataset
    from .errors import SpineIOError
    from .io_nifti import load_case

    path = Path(args.image)
    try:
        det = detect(path) if args.labels is None and args.scheme is None else None
        if det is None:
            case = load_case(path, args.labels, label_scheme=args.scheme)
            doc = _case_doc(case)
            text = case.describe()
        else:
            ds = open_dataset(path)
            doc = {"dataset": ds.kind, "root": str(ds.root), "detected_by": det.reason,
                   "cases": len(ds), "splits": ds.split_counts(),
                   "with_labels": sum(c.has_labels for c in ds.cases),
                   "assumptions": list(ds.adapter.assumptions), "warnings": ds.warnings}
            lines = [f"{ds.adapter.title}", f"root: {ds.root}",
                     f"cases: {len(ds)} ({', '.join(f'{k} {v}' for k, v in doc['splits'].items())}), "
                     f"{doc['with_labels']} with labels"]
            lines += [f"warning: {w}" for w in ds.warnings]
            if path.is_file() and len(ds) == 1:
                case = ds.load_case(ds.cases[0])
                doc["case"] = _case_doc(case)
                lines.append(case.describe())
            text = "\n".join(lines)
    except SpineIOError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(doc, indent=1) if args.json else text)
    return 0


def _view(args) -> int:
    from ._napari._launch import launch

    return launch([Path(p) for p in args.paths], sample=args.sample, screenshot=args.screenshot)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "info":
        return _info(_info_parser().parse_args(argv[1:]))
    if argv and argv[0] == "view":
        argv = argv[1:]
    return _view(_view_parser().parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

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
    p.add_argument("image")
    p.add_argument("labels", nargs="?")
    p.add_argument("--scheme", default=None, help="label scheme of the labels file")
    p.add_argument("--json", action="store_true", help="print JSON")
    return p


def _info(args) -> int:
    from . import ontology
    from .errors import SpineIOError
    from .io_nifti import load_case

    try:
        case = load_case(args.image, args.labels, label_scheme=args.scheme)
    except SpineIOError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    doc = {
        "case_id": case.case_id,
        "modality": case.modality,
        "shape_file": list(case.source.shape),
        "shape_display": list(case.shape),
        "spacing_mm": list(case.spacing),
        "file_orientation": "".join(case.source.axcodes),
        "oblique_deg": round(case.source.obliquity_deg, 3),
        "dtype": str(case.image.dtype),
        "label_scheme": case.label_scheme if case.labels is not None else None,
        "structures": [ontology.name_of(i) for i in case.structures_present],
        "warnings": list(case.warnings),
    }
    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        print(case.describe())
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

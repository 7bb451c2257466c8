"""Command line: ``napari-spine`` opens the viewer; ``napari-spine info`` describes files;
``napari-spine batch {predict,qa,export} ROOT --out DIR`` processes whole datasets.

``main(argv)`` returns an exit code and is tested in-process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]

_VIEW_HELP = ("Spine CT/MRI viewer, labels and QA. Opens napari with the napari-spine "
             "widgets and the given files, or a sample phantom. Other commands: "
             "'napari-spine info IMAGE [LABELS]', "
             "'napari-spine batch {predict,qa,export} ROOT --out DIR', "
             "'napari-spine review {export,import} ...'.")
_BATCH_HELP = ("Run predict, qa or export over every case of a dataset (MMCSD, CSpineSeg, "
              "CTSpine1K, SSMSpine, Spine-MSCA), on a Dask cluster. Per-case outputs, logs and "
              "DIR/summary.csv; a rerun skips cases already done. Exit code 0 when every case "
              "succeeded.")


def _scheme(extra: tuple[str, ...] = ()):
    """An argparse type: a known label scheme (or one of ``extra``), else the list of them."""
    def check(text: str) -> str:
        from .anatomy.labelmaps import available_schemes

        valid = (*extra, *available_schemes())
        if text not in valid:
            raise argparse.ArgumentTypeError(f"unknown scheme {text!r}; one of: {', '.join(valid)}")
        return text
    check.__name__ = "scheme"
    return check


def _workers(text: str) -> int:
    """An argparse type: 0 (no Dask, in this process) up to a generous number of processes."""
    top = max(64, 8 * (os.cpu_count() or 1))
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= n <= top:
        raise argparse.ArgumentTypeError(f"{n}: from 0 (no Dask, in this process) to {top} worker processes")
    return n


def _view_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="napari-spine", description=_VIEW_HELP)
    p.add_argument("paths", nargs="*", help="NIfTI images or segmentations to open")
    p.add_argument("--sample", choices=("ct", "mr", "none"), default=None,
                   help="sample phantom to open when no path is given (default: ct)")
    p.add_argument("--screenshot", metavar="PNG",
                   help="save a screenshot of the whole window and exit")
    p.add_argument("--scheme", default=None, metavar="NAME", type=_scheme(),
                   help="read the labels of the files in this label scheme (see 'napari-spine "
                   "info LABELS'); by default the file's own names, else its dataset's scheme")
    return p


def _info_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="napari-spine info",
        description="Describe a NIfTI or DICOM case: shape, spacing, orientation and labelled structures.",
    )
    p.add_argument("image", help="a NIfTI file, a DICOM file or folder, a dataset folder, a dataset file or archive")
    p.add_argument("labels", nargs="?", help="segmentation of IMAGE (NIfTI)")
    p.add_argument("--scheme", default=None, type=_scheme(), help="label scheme of the labels file")
    p.add_argument("--series", default=None, help="DICOM series to describe (SeriesNumber or UID)")
    p.add_argument("--json", action="store_true", help="print JSON")
    return p


def _batch_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="napari-spine batch", description=_BATCH_HELP)
    p.add_argument("command", choices=("predict", "qa", "export"))
    p.add_argument("root", help="dataset root, a folder inside it, a file or an archive")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=_workers, default=None, metavar="N",
                       help="local Dask worker processes (default: one per core; 0: no Dask, "
                       "in this process)")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="use an existing Dask cluster, e.g. tcp://10.0.0.5:8786")
    p.add_argument("--kind", default=None, help="dataset kind, when detection is ambiguous")
    p.add_argument("--split", default=None, help="only cases of this split (train, test ...)")
    p.add_argument("--case", dest="cases", action="append", default=[], metavar="ID",
                   help="only this case (repeatable)")
    p.add_argument("--glob", default=None, help="only case ids matching this pattern")
    p.add_argument("--model", default="default",
                   help="predict: 'default', an engine (totalsegmentator, totalsegmentator-mr, "
                   "totalspineseg, spineps), a TorchScript file, an nnU-Net folder, an MMCSD .pth")
    p.add_argument("--device", default="auto", help="predict: auto, cpu, cuda, cuda:N, mps")
    p.add_argument("--scheme", default=None, type=_scheme(("native", "canonical")),
                   help="label ids of written labels: native (export default), canonical "
                   "(predict default) or a scheme name")
    p.add_argument("--sequence", default=None, help="MMCSD sequence / SSMSpine image variant")
    p.add_argument("--predictions", default=None, metavar="DIR",
                   help="qa: compare the reference labels with a 'batch predict' output")
    p.add_argument("--force", action="store_true", help="recompute cases that are up to date")
    p.add_argument("--gpu-resource", action="store_true",
                   help="ask for a Dask worker resource GPU=1 per case (see docs/batch.md)")
    p.add_argument("--trust-model", action="store_true",
                   help="predict: let a model file that carries code (TorchScript) run; "
                   "only for files from a source you trust")
    _review_db_arg(p, "qa: also queue the checked cases, triaged, in this review database")
    return p


_REVIEW_DB_HELP = ("an SQLite file or postgresql://user@host:port/db (password in ~/.pgpass or "
                   "PGPASSWORD); default: $NAPARI_SPINE_REVIEW_DB")


def _review_db_arg(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--review-db", default=os.environ.get("NAPARI_SPINE_REVIEW_DB") or None,
                   metavar="LOCATION", help=f"{what}: {_REVIEW_DB_HELP}")


def _review_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="napari-spine review",
        description="Move a review set (cases, decisions, level flags, metrics, history) between "
        "review databases, e.g. from an SQLite file to the team's PostgreSQL server.")
    sub = p.add_subparsers(dest="action", required=True)
    e = sub.add_parser("export", help="write the review database to a .json file or a new CSV folder")
    e.add_argument("out", help="a .json file, or a new folder for CSV files")
    i = sub.add_parser("import", help="add the cases of an exported review set to the review database")
    i.add_argument("src", help="a .json file or a CSV folder written by 'review export'")
    i.add_argument("--replace", action="store_true",
                   help="replace cases already in the database (default: keep them, skip the import's)")
    for q in (e, i):
        _review_db_arg(q, "the review database")
    return p


def _check_location(location: str | None, prog: str) -> str | None:
    """The location, or None after saying what is wrong with it."""
    from .qa.review import has_password

    if not location:
        print(f"{prog}: name the review database with --review-db or NAPARI_SPINE_REVIEW_DB", file=sys.stderr)
        return None
    if has_password(location):
        print(f"{prog}: the review database URL carries a password; keep it in ~/.pgpass or "
              "PGPASSWORD instead (it would show in process lists and logs)", file=sys.stderr)
        return None
    return location


def _review(args) -> int:
    from .qa.review import ReviewDB, ReviewDBError
    from .qa.review_transfer import export_review, import_review

    location = _check_location(args.review_db, "napari-spine review")
    if location is None:
        return 2
    try:
        db = ReviewDB(location)
        try:
            if args.action == "export":
                out = export_review(db, args.out)
                print(f"{len(db.queue())} cases of {db.where} written to {out}")
            else:
                n = import_review(db, args.src, replace=args.replace)
                print(f"{n['cases']} cases imported into {db.where} ({n['skipped']} already there, kept), "
                      f"{n['levels']} level flags, {n['metrics']} metric snapshots, {n['history']} history entries")
        finally:
            db.close()
    except ReviewDBError as exc:
        print(f"napari-spine review: {exc}", file=sys.stderr)
        return 2
    return 0


def _batch(args) -> int:
    from .batch import BatchError, run

    if args.review_db and _check_location(args.review_db, "napari-spine batch") is None:
        return 2
    try:
        res = run(args.command, args.root, args.out, kind=args.kind, split=args.split,
                  case_ids=args.cases, glob=args.glob, workers=args.workers,
                  scheduler=args.scheduler, model=args.model, device=args.device,
                  scheme=args.scheme, sequence=args.sequence, predictions=args.predictions,
                  force=args.force, gpu_resource=args.gpu_resource,
                  trust_model=args.trust_model,
                  review_db=args.review_db if args.command == "qa" else None)
    except BatchError as exc:
        print(f"napari-spine batch: {exc}", file=sys.stderr)
        return 2
    return 0 if res.ok else 1


def _case_doc(case) -> dict:
    from .anatomy import ontology

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
        "other_structures": [{"id": e.native_id, "name": e.name, "source": e.source}
                             for e in case.other_structures()],
        "landmarks": len(case.landmarks) if case.landmarks is not None else 0,
        "warnings": list(case.warnings),
    }


def _info(args) -> int:
    from . import load_case
    from .datasets import detect, open_dataset
    from .errors import SpineIOError
    from .io.masks import load_mask_folder, mask_folder_of
    from .io.nifti import is_label_file, is_nifti_path, load_labels_file

    path = Path(args.image)
    try:
        from .io import dicom

        folder = mask_folder_of(path) if args.labels is None and path.is_dir() else None
        # a DICOM file or folder: its default (or chosen) series, and the list of all of them
        is_dicom = folder is None and not is_nifti_path(path) and dicom.is_dicom_source(path)
        if args.series is not None and not is_dicom:
            raise SpineIOError(f"{path}: --series chooses a DICOM series; this is not a DICOM file or folder")
        det = (detect(path) if folder is None and args.labels is None and args.scheme is None
               and not is_dicom else None)
        if folder is not None:  # one binary mask per class (TotalSegmentator's output folder)
            case = load_mask_folder(folder)
            doc = _case_doc(case)
            text = case.describe()
        elif det is None and args.labels is None and path.is_file() and is_label_file(path):
            case = load_labels_file(path, label_scheme=args.scheme)  # a segmentation alone
            doc = _case_doc(case)
            text = case.describe()
        elif det is None:
            case = load_case(path, args.labels, label_scheme=args.scheme, series=args.series)
            doc = _case_doc(case)
            text = case.describe()
            if not is_nifti_path(path) and dicom.is_dicom_source(path):
                found = dicom.scan(path)
                doc["dicom_series"] = [{"label": s.label(), "uid": s.uid, "number": s.number,
                                        "images": s.frames, "orientation": s.orientation} for s in found]
                text += "\nseries:\n" + "\n".join(f"  {s.label()}" for s in found)
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
    from .errors import SpineIOError

    for p in args.paths:  # said here, before napari starts, rather than as a traceback in it
        path = Path(p)
        if not path.exists():
            raise SpineIOError(f"{path}: no such file or folder")
        if path.is_file() and path.stat().st_size == 0:
            raise SpineIOError(f"{path}: file is empty (0 bytes)")
    return launch([Path(p) for p in args.paths], sample=args.sample, screenshot=args.screenshot,
                  scheme=args.scheme)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``napari-spine`` command line (``napari-spine --help``); returns the exit code.
    A user's error (a file that is not there or cannot be read, a name too long for the
    file system, a bad database location) is one line on stderr and exit code 2, never a
    traceback."""
    from .errors import SpineIOError

    try:
        return _main(argv)
    except (SpineIOError, OSError) as exc:
        detail = str(exc) if isinstance(exc, SpineIOError) else \
            f"{exc.filename + ': ' if getattr(exc, 'filename', None) else ''}{exc.strerror or exc}"
        print(f"napari-spine: {detail}", file=sys.stderr)
        return 2


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "info":
        return _info(_info_parser().parse_args(argv[1:]))
    if argv and argv[0] == "batch":
        return _batch(_batch_parser().parse_args(argv[1:]))
    if argv and argv[0] == "review":
        return _review(_review_parser().parse_args(argv[1:]))
    if argv and argv[0] == "view":
        argv = argv[1:]
    return _view(_view_parser().parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

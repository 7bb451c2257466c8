"""The batch run: pick the cases, skip those up to date, compute the rest, summarise."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from fnmatch import fnmatch
from pathlib import Path

from ..errors import SpineIOError
from ..inference.types import ProgressEvent
from .cluster import connect, run_on_dask
from .fingerprint import case_fingerprint, model_fingerprint, up_to_date
from .options import BatchError, BatchOptions, BatchResult
from .outputs import check_output, write_measurements, write_report, write_summary
from .work import MODELS, process_case

__all__ = ["run", "select_cases"]


# long: the public signature lists every batch option by keyword (21 lines); the body is 43
def run(
    command: str,
    root: str | os.PathLike,
    out: str | os.PathLike,
    *,
    kind: str | None = None,
    split: str | None = None,
    case_ids: Sequence[str] = (),
    glob: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    model: str = "default",
    device: str = "auto",
    scheme: str | None = None,
    sequence: str | None = None,
    predictions: str | None = None,
    force: bool = False,
    gpu_resource: bool = False,
    trust_model: bool = False,
    progress: Callable[[ProgressEvent], None] | None = None,
    review_db: str | None = None,
) -> BatchResult:
    """Run ``command`` over a dataset (see the module docstring).

    ``workers``: ``None`` starts a LocalCluster with one process per core, ``0`` runs in
    this process, ``N`` starts N worker processes; ``scheduler`` uses an existing Dask
    cluster instead. ``gpu_resource`` asks for a worker resource ``GPU=1`` per case (one
    model per GPU worker; see docs/batch.md). ``force`` recomputes up-to-date cases.
    ``trust_model`` lets a model file that carries code (TorchScript) run; without it such
    a model stops the run before any worker starts. ``progress`` receives
    :class:`~napari_spine.inference.ProgressEvent` objects (the same events a prediction
    yields):
    stage ``"prepare"``, then ``"cases"`` with ``done``/``total`` after every case, then
    ``"done"``; by default their messages go to standard error. ``review_db`` (qa): a review
    database (file or ``postgresql://`` URL) that gets the checked cases, triaged.
    """
    emit = progress or _print_event

    def say(msg: str, stage: str = "prepare", done: int = 0, total: int = 0) -> None:
        emit(ProgressEvent(stage, done, total, msg))

    opts = BatchOptions(command, scheme=scheme, model=str(model), device=device,
                        sequence=sequence, predictions=str(predictions) if predictions else None,
                        trust_model=bool(trust_model))
    root, out = Path(root), Path(out)
    ds, cases = _open_cases(root, kind, split, case_ids, glob, command, predictions)
    choices = tuple(getattr(ds.adapter, "sequence_choices", ()) or ())
    if sequence is not None and sequence not in choices:
        raise BatchError(f"--sequence {sequence!r}: " + (f"{ds.kind} images are one of {', '.join(choices)}"
                                                         if choices else f"{ds.kind} has one image per case"))
    model_fp = _prepare_model(opts) if command == "predict" else ""
    client = _client_for(scheduler, out)
    say(f"{ds.kind}: {len(cases)} cases, {command} -> {out}")
    fps = {c.case_id: case_fingerprint(c, opts, model_fp) for c in cases}
    rows = {} if force else {c.case_id: prev for c in cases
                             if (prev := up_to_date(c, out, fps[c.case_id])) is not None}
    todo = [c for c in cases if c.case_id not in rows]
    result = BatchResult([], out, reused=list(rows))
    if rows:
        say(f"{len(rows)} cases up to date, {len(todo)} to compute")
    t0 = time.perf_counter()

    def record(row: dict) -> None:
        rows[row["case_id"]] = row
        result.computed.append(row["case_id"])
        n, el = len(result.computed), time.perf_counter() - t0
        tail = f"{row['status']}" + (f": {row['reason']}" if row["reason"] else "")
        say(f"[{n}/{len(todo)}] {row['case_id']} {tail} ({row.get('seconds', 0):.1f} s) "
            f"elapsed {el:.0f} s, ETA {el / n * (len(todo) - n):.0f} s", "cases", n, len(todo))

    n_workers = workers if workers is not None else (os.cpu_count() or 1)
    if todo and client is None and n_workers == 0:
        for c in todo:
            record(process_case(c, opts, str(out), fps[c.case_id]))
    elif todo:
        run_on_dask(client, n_workers, gpu_resource, todo, opts, out, fps, record, say)
    elif client is not None:
        client.close()
    result.rows = [rows[c.case_id] for c in cases]
    write_summary(result.rows, out, {"command": command, "root": str(root), "kind": ds.kind,
                                     **asdict(opts), "split": split, "cases": list(case_ids),
                                     "glob": glob})
    if command == "qa":
        write_report(result.rows, out, _title(command, ds.kind, root))
        if review_db:
            _queue(review_db, result.rows, out, ds, root, say)
    if command == "export":
        write_measurements(out, [c.case_id for c in cases])
    n_fail = len(result.failed)
    say(f"done: {len(result.rows) - n_fail} ok, {n_fail} failed; summary {out / 'summary.csv'}",
        "done", len(result.rows), len(result.rows))
    return result


def _queue(location: str, rows, out: Path, ds, root: Path, say) -> None:
    """Queue the checked cases for review; a database that cannot be used fails the run
    with its message (the per-case outputs stay)."""
    from ..qa.review import ReviewDBError
    from .review_queue import queue_for_review

    try:
        n = queue_for_review(location, rows, out, ds, root)
    except ReviewDBError as exc:
        raise BatchError(f"the cases were checked, but not queued for review: {exc}") from None
    say(f"{n} cases queued for review in {_where(location)}")


def _where(location: str) -> str:
    from ..qa.review import is_url, redact

    return redact(location) if is_url(location) else location


def _title(command: str, kind: str, root: Path) -> str:
    """``napari-spine qa: ctspine1k (folder)``, without the folder when it is named as the
    dataset (no "ctspine1k ctspine1k")."""
    name = root.name
    same = name.lower().replace("-", "").replace("_", "") == kind.lower().replace("_", "")
    return f"napari-spine {command}: {kind}" + ("" if same or not name else f" ({name})")


def _print_event(ev: ProgressEvent) -> None:
    """The default progress: each event's message on standard error."""
    print(ev.message, file=sys.stderr, flush=True)


def _client_for(scheduler: str | None, out: Path):
    """The client of an existing cluster (None for a local run), connected before anything
    is written; an unusable output folder closes it again."""
    client = connect(scheduler) if scheduler else None
    try:
        check_output(out)
    except BatchError:
        if client is not None:
            client.close()
        raise
    return client


def _open_cases(root: Path, kind, split, case_ids, glob, command: str, predictions):
    """The dataset and the cases to run on; a BatchError says why there are none."""
    from .. import open_dataset

    if not root.exists():
        raise BatchError(f"{root}: no such folder")
    if root.is_dir() and not any(root.iterdir()):
        raise BatchError(f"{root}: the folder is empty")
    try:
        ds = open_dataset(root, kind)
    except SpineIOError as exc:
        raise BatchError(str(exc)) from None
    except KeyError as exc:
        raise BatchError(str(exc.args[0]) if exc.args else str(exc)) from None
    cases = select_cases(ds, split, case_ids, glob)
    if not cases:
        raise BatchError(f"{root}: no cases to process ({ds.kind}; filters: split={split}, "
                         f"cases={list(case_ids) or 'all'}, glob={glob})")
    if command == "qa" and not predictions and not any(c.has_labels for c in cases):
        raise BatchError(f"{root}: {ds.kind} cases have no labels to check")
    return ds, cases


def _prepare_model(opts: BatchOptions) -> str:
    """Load the model once here (a bad or untrusted model fails before any worker starts;
    in-process runs reuse it) and return its fingerprint."""
    from ..inference import load_model

    fp = model_fingerprint(opts.model)
    try:
        MODELS[opts.model] = load_model(opts.model, trust=opts.trust_model)
    except SpineIOError as exc:
        raise BatchError(str(exc)) from None
    return fp


def select_cases(ds, split: str | None = None, case_ids: Sequence[str] = (), glob: str | None = None):
    """The dataset's cases of one split, with the given ids, or matching a glob of ids."""
    cases = list(ds.cases)
    if split:
        cases = [c for c in cases if c.split == split or (split == "test" and c.split.startswith("test"))]
    if case_ids:
        want = set(case_ids)
        missing = want - {c.case_id for c in cases}
        if missing:
            raise BatchError(f"{ds.root}: no case(s) {', '.join(sorted(missing))} in this selection")
        cases = [c for c in cases if c.case_id in want]
    if glob:
        cases = [c for c in cases if fnmatch(c.case_id, glob)]
    return cases

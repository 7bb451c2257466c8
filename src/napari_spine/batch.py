"""Whole datasets headless: ``predict``, ``qa`` and ``export`` over every case, on Dask.

One function per case (:func:`process_case`) does the same work as the widgets, through
the same core functions (``load_case``, ``predict``, ``export_labels``,
``level_metrics``, ``validate_sequence``); :func:`run` lists the cases, skips those already
done, and maps the rest over a ``dask.distributed`` cluster (or runs them in this process
with ``workers=0``). Only case references (paths and small metadata) go to the workers and
only small result rows come back; images and labels never cross a process boundary.

Output folder::

    DIR/summary.csv            one row per case (status, reason, outputs, key numbers)
    DIR/summary.json           the same rows, plus the run's options
    DIR/summary.parquet        the same table (when pandas and pyarrow are installed)
    DIR/report.html            QA report (qa)
    DIR/cases/<case>/...       per-case outputs (labels NIfTI, *.json)
    DIR/cases/<case>/done.json fingerprint of inputs, options and model, written last
    DIR/logs/<case>.log        per-case log (timings, messages, the traceback on failure)

A case is *up to date* when its ``done.json`` fingerprint matches (input files' size and
modification time, the command's options, the model file's hash, the package version)
and its outputs exist: a rerun skips it, so a killed run continues where it stopped.
Every file is written to a temporary name and renamed, so nothing is ever half-written.
Rows do not hold timings, so ``summary.csv`` is identical whatever the number of workers.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from .errors import SpineIOError
from .io.files import atomic_path, safe_name, write_json

__all__ = ["BatchError", "BatchOptions", "BatchResult", "COMMANDS", "process_case", "run"]

COMMANDS = ("predict", "qa", "export")
SUMMARY_FIELDS = ("case_id", "split", "status", "reason", "outputs", "structures", "errors",
                  "warnings", "mean_dice", "score")


class BatchError(SpineIOError):
    """The batch cannot start (bad dataset folder, unwritable output, unreachable cluster)."""


@dataclass(frozen=True)
class BatchOptions:
    """What to do with every case (everything here enters the fingerprint)."""

    command: str
    scheme: str | None = None  # labels scheme of written labels; default per command
    model: str = "default"
    device: str = "auto"
    sequence: str | None = None
    predictions: str | None = None  # qa: a previous ``batch predict`` output folder
    trust_model: bool = False  # the user trusts a model file that carries code (TorchScript)

    def __post_init__(self) -> None:
        if self.command not in COMMANDS:
            raise BatchError(f"unknown command {self.command!r}; use {', '.join(COMMANDS)}")

    @property
    def label_scheme(self) -> str:
        """The label scheme of the written labels (``native`` unless canonical ids were asked for)."""
        return self.scheme or ("canonical" if self.command == "predict" else "native")


@dataclass
class BatchResult:
    rows: list[dict[str, Any]]
    out: Path
    computed: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Cases that succeeded (or were up to date)."""
        return all(r["status"] == "ok" for r in self.rows)

    @property
    def failed(self) -> list[dict[str, Any]]:
        """Cases that failed, with their reasons in the rows."""
        return [r for r in self.rows if r["status"] != "ok"]


# -- fingerprints ------------------------------------------------------------------------------
def _location_stamp(loc: str) -> list:
    from .datasets._pt import location_path

    path = location_path(loc)
    try:
        st = os.stat(path)
        return [loc, st.st_size, st.st_mtime_ns]
    except OSError:
        return [loc, None, None]


def _hash_file(path: Path, h) -> None:
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)


def model_fingerprint(source: str) -> str:
    """Content hash of a model file or folder (``default``: the bundled file)."""
    if source == "default":
        from .inference.model import _default_path

        path = _default_path()
    else:
        path = Path(source)
    h = hashlib.sha256()
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file():
                h.update(str(p.relative_to(path)).encode())
                _hash_file(p, h)
    elif path.is_file():
        _hash_file(path, h)
    else:
        raise BatchError(f"{path}: no such model file or folder")
    return h.hexdigest()


def _fingerprinted(opts: BatchOptions) -> dict:
    """The options that change a case's outputs (trusting a model changes none)."""
    d = asdict(opts)
    d.pop("trust_model")
    return d


def case_fingerprint(ref, opts: BatchOptions, model_fp: str) -> str:
    """A hash of everything a case's outputs depend on: its files (size and mtime), the
    options and the model; an unchanged fingerprint means the outputs are up to date."""
    from . import __version__

    stamps = [_location_stamp(v) for v in ref.images.values()]
    if ref.labels:
        stamps.append(_location_stamp(ref.labels))
    if opts.command == "qa" and opts.predictions:
        pred = Path(opts.predictions) / "cases" / safe_name(ref.case_id) / "prediction.nii.gz"
        stamps.append(_location_stamp(str(pred)))
    blob = json.dumps({"version": __version__, "options": _fingerprinted(opts), "inputs": stamps,
                       "model": model_fp}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


# -- one case ----------------------------------------------------------------------------------
_MODELS: dict[str, Any] = {}  # one loaded model per worker process


def _model(source: str, trust: bool = False):
    if source not in _MODELS:
        threads = os.environ.get("NAPARI_SPINE_TORCH_THREADS")
        if threads:  # set by the local cluster: cores shared between worker processes
            import torch

            torch.set_num_threads(max(1, int(threads)))
        from .inference import load_model

        _MODELS[source] = load_model(source, trust=trust)
    return _MODELS[source]


def _findings(labels, spacing) -> list[dict]:
    from .correction import validate_sequence

    return [{"kind": f.kind, "severity": f.severity, "structures": list(f.structures),
             "message": f.message, "position": [round(float(p), 2) for p in f.position]}
            for f in validate_sequence(labels, spacing)]


def _do_export(case, case_dir: Path, opts: BatchOptions, log) -> tuple[dict, list[str]]:
    from .io.export import export_labels, export_landmarks

    outputs, row = [], {}
    if case.labels is not None:
        res = export_labels(case, case.labels, case_dir / "labels.nii.gz", scheme=opts.label_scheme)
        outputs.append("labels.nii.gz")
        row["structures"] = len([k for k in res.counts if k])
        log(f"labels written ({res.scheme} ids, {row['structures']} structures)")
    if case.landmarks is not None and len(case.landmarks):
        export_landmarks(case, case_dir / "landmarks.json", case.landmarks)
        outputs.append("landmarks.json")
    info = {"case_id": case.case_id, "dataset": case.dataset, "modality": case.modality,
            "shape": list(case.shape), "spacing": list(case.spacing),
            "structures": list(case.structures_present), "warnings": list(case.warnings),
            "label_table": {str(k): {"name": e.name, "anatomy_id": e.anatomy_id, "source": e.source}
                            for k, e in case.label_table().items()},
            "metadata": dict(case.metadata)}
    write_json(case_dir / "case.json", info)
    outputs.append("case.json")
    return row, outputs


def _do_predict(case, case_dir: Path, opts: BatchOptions, log) -> tuple[dict, list[str]]:
    from .inference import predict
    from .io.export import export_labels

    model = _model(opts.model, opts.trust_model)
    pred = predict(case, model, opts.device)
    log(f"{pred.model_name} on {pred.device}: "
        + ", ".join(f"{k} {v:.2f}" for k, v in pred.timings.items()))
    if pred.labels is None:  # classifier
        out = {"model": pred.model_name, "scores": pred.scores, "recorded": pred.recorded}
        write_json(case_dir / "classification.json", out)
        score = list(pred.scores.values())[-1]
        row = {"score": round(score, 6)}
        return row, ["classification.json"]
    res = export_labels(case, pred.labels, case_dir / "prediction.nii.gz", scheme=opts.label_scheme)
    findings = _findings(pred.labels, case.spacing)
    write_json(case_dir / "prediction.json", {"model": pred.model_name, "findings": findings,
                                               "structures": sorted(int(k) for k in res.counts if k)})
    row = {"structures": len([k for k in res.counts if k]),
           "errors": sum(f["severity"] == "error" for f in findings),
           "warnings": sum(f["severity"] == "warning" for f in findings)}
    return row, ["prediction.nii.gz", "prediction.json"]


def _do_qa(case, case_dir: Path, opts: BatchOptions, log) -> tuple[dict, list[str]]:
    import numpy as np

    from .qa import level_metrics

    if case.labels is None:
        raise SpineIOError(f"{case.case_id}: no reference labels to check")
    findings = _findings(case.labels, case.spacing)
    out = {"findings": findings}
    row = {"structures": len(case.structures_present),
           "errors": sum(f["severity"] == "error" for f in findings),
           "warnings": sum(f["severity"] == "warning" for f in findings)}
    if opts.predictions:
        from .io.nifti import load_labels_file

        p = Path(opts.predictions) / "cases" / safe_name(case.case_id) / "prediction.nii.gz"
        if not p.is_file():
            raise SpineIOError(f"{p}: no prediction for this case")
        pc = load_labels_file(p, label_scheme="verse")
        if pc.shape != case.shape or not np.allclose(pc.affine, case.affine, atol=1e-4):
            raise SpineIOError(f"{p}: the prediction is not on the case's grid")
        cand = pc.labels
        rows = level_metrics(case.labels, cand, case.spacing)
        out["levels"] = [r.as_dict() for r in rows]
        dice = [r.dice for r in rows]
        row["mean_dice"] = round(float(np.mean(dice)), 6) if dice else None
    write_json(case_dir / "qa.json", out)
    return row, ["qa.json"]


_WORK = {"export": _do_export, "predict": _do_predict, "qa": _do_qa}


def process_case(ref, opts: BatchOptions, out: str, fingerprint: str) -> dict[str, Any]:
    """Do one case; never raises: a failure is a row with its reason (and a log file)."""
    from . import load_case

    out = Path(out)
    name = safe_name(ref.case_id)
    case_dir = out / "cases" / name
    log_path = out / "logs" / f"{name}.log"
    lines: list[str] = []
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        lines.append(f"[{time.perf_counter() - t0:7.2f} s] {msg}")

    row: dict[str, Any] = {"case_id": ref.case_id, "split": ref.split, "status": "ok", "reason": ""}
    try:
        case_dir.mkdir(parents=True, exist_ok=True)
        log(f"{opts.command} {ref.case_id} ({ref.kind})")
        case = load_case(ref, sequence=opts.sequence)
        log(f"loaded {case.shape} {case.modality}")
        extra, outputs = _WORK[opts.command](case, case_dir, opts, log)
        row.update(extra)
        row["outputs"] = ";".join(outputs)
        write_json(case_dir / "done.json", {"fingerprint": fingerprint, "row": row})
        log("done")
    except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
        row.update(status="failed", reason=f"{type(exc).__name__}: {' '.join(str(exc).split())}",
                   outputs="")
        lines.append(traceback.format_exc())
    row["seconds"] = round(time.perf_counter() - t0, 3)
    row["peak_rss_mb"] = _peak_rss_mb()
    lines.append(f"{row['seconds']:.2f} s, peak memory of this process {row['peak_rss_mb']:.0f} MB")
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(log_path) as tmp:
            tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    except OSError:
        pass
    return row


def _peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux VmHWM: unlike ``ru_maxrss`` it is not
    inherited from the parent that spawned a worker)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    try:
        import resource

        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
        return round(kb / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)
    except (ImportError, OSError):
        return float("nan")


def _up_to_date(ref, out: Path, fingerprint: str) -> dict | None:
    case_dir = out / "cases" / safe_name(ref.case_id)
    try:
        done = json.loads((case_dir / "done.json").read_text())
    except (OSError, ValueError):
        return None
    if done.get("fingerprint") != fingerprint:
        return None
    row = done.get("row", {})
    outputs = [o for o in str(row.get("outputs", "")).split(";") if o]
    if not all((case_dir / o).is_file() for o in outputs):
        return None
    return row


# -- selection, checks, summary ----------------------------------------------------------------
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


def _check_output(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise BatchError(f"{out}: output folder is not writable ({exc.strerror or exc})") from None


def write_summary(rows: list[dict], out: Path, meta: dict) -> Path:
    """Write ``summary.csv`` and ``summary.json`` (and ``summary.parquet`` with pandas) of a run."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=SUMMARY_FIELDS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in SUMMARY_FIELDS})
    target = out / "summary.csv"
    with atomic_path(target) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")
    write_json(out / "summary.json", {"options": meta,
                                       "cases": [{k: r.get(k) for k in SUMMARY_FIELDS} for r in rows]})
    try:  # the same table for pandas/Arrow users, when they are installed
        import pandas as pd

        frame = pd.DataFrame([{k: r.get(k) for k in SUMMARY_FIELDS} for r in rows],
                             columns=list(SUMMARY_FIELDS))
        for col in ("structures", "errors", "warnings"):
            frame[col] = frame[col].astype("Int64")
        for col in ("mean_dice", "score"):
            frame[col] = frame[col].astype("Float64")
        with atomic_path(out / "summary.parquet") as tmp:
            frame.to_parquet(tmp, index=False)
    except ImportError:
        pass
    return target


def _write_report(rows: list[dict], out: Path, title: str) -> Path | None:
    from .qa.metrics import LevelRow
    from .qa.report import CaseResult, write_html

    results = []
    for r in rows:
        qa = out / "cases" / safe_name(r["case_id"]) / "qa.json"
        if r["status"] != "ok" or not qa.is_file():
            continue
        levels = json.loads(qa.read_text()).get("levels", [])
        lrows = [LevelRow.from_dict(lv) for lv in levels]
        status = "needs correction" if (r.get("errors") or 0) else "to do"
        results.append(CaseResult(r["case_id"], lrows, status=status,
                                  comment=f"{r.get('errors') or 0} sequence errors"))
    if not results:
        return None
    return write_html(results, out / "report.html", title=title)


# -- the run -----------------------------------------------------------------------------------
def _connect(scheduler: str):
    try:
        from dask.distributed import Client
    except ImportError:
        raise BatchError("Dask is not installed: pip install 'napari-spine[batch]'") from None
    try:
        return Client(scheduler, timeout="10s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise BatchError(f"cannot reach the Dask scheduler at {scheduler} ({exc})") from None


def _local_cluster(workers: int, gpu_resource: bool):
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise BatchError("Dask is not installed: pip install 'napari-spine[batch]' "
                         "(or use --workers 0 to run in this process)") from None
    import importlib.util

    dashboard = ":0" if importlib.util.find_spec("bokeh") else None
    threads = max(1, (os.cpu_count() or 1) // max(workers, 1))
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=dashboard, silence_logs=logging.ERROR,
                           resources={"GPU": 1} if gpu_resource else None,
                           env={"NAPARI_SPINE_TORCH_THREADS": str(threads),
                                "OMP_NUM_THREADS": str(threads)})
    return Client(cluster), cluster


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
    progress: Callable[[str], None] | None = None,
) -> BatchResult:
    """Run ``command`` over a dataset (see the module docstring).

    ``workers``: ``None`` starts a LocalCluster with one process per core, ``0`` runs in
    this process, ``N`` starts N worker processes; ``scheduler`` uses an existing Dask
    cluster instead. ``gpu_resource`` asks for a worker resource ``GPU=1`` per case (one
    model per GPU worker; see docs/batch.md). ``force`` recomputes up-to-date cases.
    ``trust_model`` lets a model file that carries code (TorchScript) run; without it such
    a model stops the run before any worker starts.
    """
    say = progress or (lambda msg: print(msg, file=sys.stderr, flush=True))
    opts = BatchOptions(command, scheme=scheme, model=str(model), device=device,
                        sequence=sequence, predictions=str(predictions) if predictions else None,
                        trust_model=bool(trust_model))
    root, out = Path(root), Path(out)
    ds, cases = _open_cases(root, kind, split, case_ids, glob, command, predictions)
    model_fp = _prepare_model(opts) if command == "predict" else ""
    client = _client_for(scheduler, out)
    say(f"{ds.kind}: {len(cases)} cases, {command} -> {out}")
    fps = {c.case_id: case_fingerprint(c, opts, model_fp) for c in cases}
    rows = {} if force else {c.case_id: prev for c in cases
                             if (prev := _up_to_date(c, out, fps[c.case_id])) is not None}
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
            f"elapsed {el:.0f} s, ETA {el / n * (len(todo) - n):.0f} s")

    n_workers = workers if workers is not None else (os.cpu_count() or 1)
    if todo and client is None and n_workers == 0:
        for c in todo:
            record(process_case(c, opts, str(out), fps[c.case_id]))
    elif todo:
        _run_on_dask(client, n_workers, gpu_resource, todo, opts, out, fps, record, say)
    elif client is not None:
        client.close()
    result.rows = [rows[c.case_id] for c in cases]
    write_summary(result.rows, out, {"command": command, "root": str(root), "kind": ds.kind,
                                     **asdict(opts), "split": split, "cases": list(case_ids),
                                     "glob": glob})
    if command == "qa":
        _write_report(result.rows, out, f"napari-spine {command}: {ds.kind} {root.name}")
    n_fail = len(result.failed)
    say(f"done: {len(result.rows) - n_fail} ok, {n_fail} failed; summary {out / 'summary.csv'}")
    return result


def _client_for(scheduler: str | None, out: Path):
    """The client of an existing cluster (None for a local run), connected before anything
    is written; an unusable output folder closes it again."""
    client = _connect(scheduler) if scheduler else None
    try:
        _check_output(out)
    except BatchError:
        if client is not None:
            client.close()
        raise
    return client


def _open_cases(root: Path, kind, split, case_ids, glob, command: str, predictions):
    """The dataset and the cases to run on; a BatchError says why there are none."""
    from . import open_dataset

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
    from .inference import load_model

    fp = model_fingerprint(opts.model)
    try:
        _MODELS[opts.model] = load_model(opts.model, trust=opts.trust_model)
    except SpineIOError as exc:
        raise BatchError(str(exc)) from None
    return fp


def _run_on_dask(client, n_workers: int, gpu_resource: bool, todo, opts: BatchOptions, out: Path,
                 fps: dict[str, str], record, say) -> None:
    """Submit every case to a Dask cluster (a LocalCluster unless ``client`` is given) and
    ``record`` each row as it completes; a worker that dies on a case fails that case only."""
    from dask.distributed import as_completed

    cluster = None
    if client is None:
        client, cluster = _local_cluster(n_workers, gpu_resource)
    try:
        link = client.dashboard_link if cluster is None or cluster.dashboard_link else ""
        say(f"Dask: {len(client.scheduler_info()['workers'])} workers"
            + (f", dashboard {link}" if link else " (install bokeh for the dashboard)"))
        resources = {"GPU": 1} if gpu_resource else None
        futs = {client.submit(process_case, c, opts, str(out), fps[c.case_id],
                              key=f"{opts.command}-{safe_name(c.case_id)}-{fps[c.case_id][:12]}",
                              pure=False, resources=resources): c for c in todo}
        for f in as_completed(futs):
            c = futs[f]
            try:
                row = f.result()
            except Exception as exc:  # noqa: BLE001 - a worker died on this case
                row = {"case_id": c.case_id, "split": c.split, "status": "failed",
                       "reason": f"{type(exc).__name__}: {exc}", "outputs": ""}
            record(row)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()

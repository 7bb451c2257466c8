"""One case of a batch run, in whichever process runs it: load, do the command, write."""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from ..errors import SpineIOError
from ..io.files import atomic_path, case_output, unique_name, write_json
from .options import BatchOptions

__all__ = ["MODELS", "process_case"]

MODELS: dict[str, Any] = {}  # one loaded model per worker process


def _model(source: str, trust: bool = False):
    if source not in MODELS:
        threads = os.environ.get("NAPARI_SPINE_TORCH_THREADS")
        if threads:  # set by the local cluster: cores shared between worker processes
            import torch

            torch.set_num_threads(max(1, int(threads)))
        from ..inference import load_model

        MODELS[source] = load_model(source, trust=trust)
    return MODELS[source]


def _findings(labels, spacing) -> list[dict]:
    from ..correction import validate_sequence

    return [{"kind": f.kind, "severity": f.severity, "structures": list(f.structures),
             "message": f.message, "position": [round(float(p), 2) for p in f.position]}
            for f in validate_sequence(labels, spacing)]


def _do_export(case, case_dir: Path, opts: BatchOptions, log) -> tuple[dict, list[str]]:
    from ..io.export import export_labels, export_landmarks

    outputs, row = [], {}
    if case.labels is not None:
        res = export_labels(case, case.labels, case_dir / "labels.nii.gz", scheme=opts.label_scheme)
        outputs.append("labels.nii.gz")
        row["structures"] = len([k for k in res.counts if k])
        log(f"labels written ({res.scheme} ids, {row['structures']} structures)")
    if case.landmarks is not None and len(case.landmarks):
        export_landmarks(case, case_dir / "landmarks.json", case.landmarks)
        outputs.append("landmarks.json")
    if case.labels is not None or (case.landmarks is not None and case.shape[0] == 1):
        outputs += _measure(case, case_dir, log)
    info = {"case_id": case.case_id, "dataset": case.dataset, "modality": case.modality,
            "shape": list(case.shape), "spacing": list(case.spacing),
            "structures": list(case.structures_present), "warnings": list(case.warnings),
            "label_table": {str(k): {"name": e.name, "anatomy_id": e.anatomy_id, "source": e.source}
                            for k, e in case.label_table().items()},
            "metadata": dict(case.metadata)}
    write_json(case_dir / "case.json", info)
    outputs.append("case.json")
    return row, outputs


def _measure(case, case_dir: Path, log) -> list[str]:
    """``measurements.csv`` / ``.json`` of a case (from its masks, else its contours)."""
    from ..measurements import measure_case

    m = measure_case(case)
    m.write_csv(case_dir / "measurements.csv")
    m.write_json(case_dir / "measurements.json")
    log(f"measured {len(m.bodies)} bodies, {len(m.discs)} discs, {len(m.angles)} angles ({m.source})")
    return ["measurements.csv", "measurements.json"]


def _do_predict(case, case_dir: Path, opts: BatchOptions, log) -> tuple[dict, list[str]]:
    from ..inference import predict
    from ..io.export import export_labels

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
                                               "structures": sorted(int(k) for k in res.counts if k),
                                               **({"provenance": pred.provenance} if pred.provenance else {})})
    row = {"structures": len([k for k in res.counts if k]),
           "errors": sum(f["severity"] == "error" for f in findings),
           "warnings": sum(f["severity"] == "warning" for f in findings)}
    return row, ["prediction.nii.gz", "prediction.json"]


def _do_qa(case, case_dir: Path, opts: BatchOptions, log) -> tuple[dict, list[str]]:
    import math

    import numpy as np

    from ..qa.compare import compare

    if case.labels is None:
        raise SpineIOError(f"{case.case_id}: no reference labels to check")
    findings = _findings(case.labels, case.spacing)
    out = {"findings": findings}
    row = {"structures": len(case.structures_present),
           "errors": sum(f["severity"] == "error" for f in findings),
           "warnings": sum(f["severity"] == "warning" for f in findings)}
    if opts.predictions:
        from ..io.nifti import load_labels_file

        p = case_output(opts.predictions, case.case_id, "prediction.nii.gz")
        if not p.is_file():
            raise SpineIOError(f"{p}: no prediction for this case")
        pc = load_labels_file(p, label_scheme="verse")
        if pc.shape != case.shape or not np.allclose(pc.affine, case.affine, atol=1e-4):
            raise SpineIOError(f"{p}: the prediction is not on the case's grid")
        cmp = compare(case.labels, pc.labels, case.spacing)
        out.update(cmp.as_dict(), reference=str(case.source.label_path or case.case_id), candidate=str(p))
        for note in cmp.notes:
            log(note)
        if cmp.shift is not None:
            log(cmp.shift.message)
        dice = cmp.mean_dice
        row["mean_dice"] = None if math.isnan(dice) else round(dice, 6)
    write_json(case_dir / "qa.json", out)
    return row, ["qa.json"]


_WORK = {"export": _do_export, "predict": _do_predict, "qa": _do_qa}


def process_case(ref, opts: BatchOptions, out: str, fingerprint: str) -> dict[str, Any]:
    """Do one case; never raises: a failure is a row with its reason (and a log file)."""
    from .. import load_case

    out = Path(out)
    name = unique_name(ref.case_id)  # one folder per case, whatever its id
    case_dir = out / "cases" / name
    log_path = out / "logs" / f"{name}.log"
    lines: list[str] = []
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        lines.append(f"[{time.perf_counter() - t0:7.2f} s] {msg}")

    row: dict[str, Any] = {"case_id": ref.case_id, "folder": name, "split": ref.split, "status": "ok",
                           "reason": ""}
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

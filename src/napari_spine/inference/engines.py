"""Spine models maintained by their authors, run through their own packages.

TotalSegmentator (CT: ``total``; MR: ``total_mr``), TotalSpineSeg (MR) and SPINEPS
(sagittal T1w/T2w MR) are pip packages with command lines that download their own weights
on first use. napari-spine runs each one as its authors document it, in a process of its
own, on the current case:

1. the case image is written to a temporary NIfTI on its source grid (the file's own
   orientation, affine and header);
2. the engine's command line runs on it (only the spine classes where the engine can be
   told so: TotalSegmentator's ``--roi_subset``), on the chosen device; every line it prints
   is passed on as progress, and *Cancel* terminates its process group;
3. its label file is read through the label-table path (TotalSegmentator's header label
   table; TotalSpineSeg's and SPINEPS's numbering as schemes), checked to lie on the case
   grid, and returned as a :class:`~napari_spine.inference.types.Prediction` with its
   provenance (engine, version, task, device, time).

Weights are never fetched behind the user's back: :meth:`Engine.status` says *ready*,
*weights missing* (with the command that fetches them) or *not installed* (with the pip
extra), and a run with weights missing stops with that message before the engine starts
(all three engines would otherwise download on their own). :func:`download_weights` runs
the engine's own download when the user asks for it; it first checks in a few seconds
that the download host can be reached, so an offline machine gets a clear error, not a
hang. Weights live where each engine's own environment variables put them
(``TOTALSEG_WEIGHTS_PATH`` / ``TOTALSEG_HOME_DIR``, ``TOTALSPINESEG_DATA``,
``SPINEPS_SEGMENTOR_MODELS``).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..case import SpineCase
from .card import ModelError
from .types import InferenceCancelled, Prediction, ProgressEvent

__all__ = ["ENGINES", "Engine", "EngineModel", "EngineStatus", "download_weights", "engine_model",
           "run_engine"]

READY, MISSING, ABSENT = "ready", "weights missing", "not installed"

#: the spine classes TotalSegmentator is asked for (``--roi_subset``), per task
_TS_SPINE = {
    "total": tuple([f"vertebrae_C{i}" for i in range(1, 8)] + [f"vertebrae_T{i}" for i in range(1, 13)]
                   + [f"vertebrae_L{i}" for i in range(1, 6)] + ["vertebrae_S1", "sacrum", "spinal_cord"]),
    "total_mr": ("vertebrae", "intervertebral_discs", "spinal_cord", "sacrum"),
}
#: the nnU-Net datasets each TotalSegmentator task needs with ``--roi_subset`` (its parts
#: and the coarse model that finds the region first)
_TS_DATASETS = {"total": (291, 292, 293, 294, 295, 298), "total_mr": (730, 731, 732)}


@dataclass(frozen=True)
class EngineStatus:
    """Whether an engine can run here: ``state`` is ``"ready"``, ``"weights missing"`` or
    ``"not installed"``; ``detail`` says what is there or what to do."""

    state: str
    detail: str
    version: str | None = None
    weights: Path | None = None

    @property
    def ready(self) -> bool:
        """Whether the engine can run now."""
        return self.state == READY


@dataclass(frozen=True)
class Engine:
    """One external spine model: how to find it, its weights, run it and read its output."""

    key: str
    title: str
    modality: str  # "CT" or "MR"
    distribution: str  # the PyPI package
    module: str  # its import name
    executable: str  # its command line
    extra: str  # napari-spine's pip extra that installs it
    task: str
    host: str  # where its weights come from (checked before a download)
    about: str

    # -- where things are -------------------------------------------------------------------
    def installed(self) -> bool:
        """Whether its package imports here and its command line is found."""
        return importlib.util.find_spec(self.module) is not None and self.command_path() is not None

    def command_path(self) -> str | None:
        """The engine's command line: beside this Python first (its virtual environment),
        then on ``PATH``."""
        beside = Path(sys.executable).with_name(self.executable)
        return str(beside) if beside.is_file() else shutil.which(self.executable)

    def version(self) -> str | None:
        """The installed package's version (None when it is not installed)."""
        try:
            return importlib.metadata.version(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return None

    def weights_dir(self, env: Mapping[str, str] | None = None) -> Path:
        """Where the engine keeps its weights, by its own environment variables."""
        env = os.environ if env is None else env
        if self.key.startswith("totalsegmentator"):
            if env.get("TOTALSEG_WEIGHTS_PATH"):
                return Path(env["TOTALSEG_WEIGHTS_PATH"]).expanduser()
            home = Path(env["TOTALSEG_HOME_DIR"]).expanduser() if env.get("TOTALSEG_HOME_DIR") else \
                Path.home() / ".totalsegmentator"
            return home / "nnunet" / "results"
        variable = {"totalspineseg": "TOTALSPINESEG_DATA", "spineps": "SPINEPS_SEGMENTOR_MODELS"}[self.key]
        if env.get(variable):
            return Path(env[variable]).expanduser()
        return _package_dir(self.module) / "models"

    def missing_weights(self, env: Mapping[str, str] | None = None) -> list[str]:
        """What of the weights is not there (empty when all is)."""
        root = self.weights_dir(env)
        if self.key.startswith("totalsegmentator"):
            return [f"Dataset{i}" for i in _TS_DATASETS[self.task]
                    if not any(root.glob(f"Dataset{i}_*"))]
        if self.key == "totalspineseg":
            steps = ("Dataset101_TotalSpineSeg_step1", "Dataset102_TotalSpineSeg_step2")
            results = root / "nnUNet" / "results"
            homes = [results, *(p for p in results.glob("*") if p.is_dir())] if results.is_dir() else []
            if any(all((h / s).is_dir() for s in steps) for h in homes):
                return []
            return list(steps)
        # SPINEPS: a semantic, an instance and a labelling model, each a folder with an
        # inference_config.json
        found = [p.parent.name.lower() for p in root.glob("*/inference_config.json")] if root.is_dir() else []
        return [kind for kind in ("t2w", "instance", "labeling") if not any(kind in f for f in found)]

    def download_command(self) -> list[str]:
        """The engine's own download, as a command line (run by :func:`download_weights`)."""
        if self.key.startswith("totalsegmentator"):
            ids = ", ".join(str(i) for i in _TS_DATASETS[self.task])
            code = ("from totalsegmentator.libs import download_pretrained_weights as get; "
                    f"[get(i) for i in ({ids})]")
        elif self.key == "totalspineseg":
            code = ("from pathlib import Path; from totalspineseg import ZIP_URLS; "
                    "from totalspineseg.init_inference import init_inference; "
                    f"init_inference(data_path=Path({str(self.weights_dir())!r}), "
                    "dict_urls=ZIP_URLS, quiet=False)")
        else:
            code = ("from spineps.get_models import get_instance_model, get_labeling_model, "
                    "get_semantic_model; get_semantic_model('t2w'); get_instance_model('instance'); "
                    "get_labeling_model('t2w_labeling')")
        return [sys.executable, "-c", code]

    def status(self, env: Mapping[str, str] | None = None) -> EngineStatus:
        """Ready, weights missing (with the command that fetches them) or not installed."""
        if not self.installed():
            return EngineStatus(ABSENT, f"{self.title} is not installed: pip install "
                                        f"'napari-spine[{self.extra}]'")
        missing = self.missing_weights(env)
        root, version = self.weights_dir(env), self.version()
        name = f"{self.title} {version or ''}".rstrip()
        if missing:
            return EngineStatus(MISSING, f"{name}: weights missing in {root} ({', '.join(missing)}); use "
                                         f"Download weights, or run: {_shown(self.download_command())}",
                                version, root)
        return EngineStatus(READY, f"{name}: ready ({root})", version, root)

    # -- running ----------------------------------------------------------------------------
    def command(self, image: Path, out: Path, device: str) -> list[str]:
        """The documented command line for ``image``, writing into the folder ``out``."""
        exe = self.command_path() or self.executable
        if self.key.startswith("totalsegmentator"):
            dev = "cpu" if device == "cpu" else ("gpu" + device[4:] if device.startswith("cuda") else device)
            return [exe, "-i", str(image), "-o", str(out / "segmentation.nii.gz"), "--ml",
                    "--task", self.task, "--device", dev, "--roi_subset", *_TS_SPINE[self.task]]
        if self.key == "totalspineseg":
            return [exe, str(image), str(out), "--device", "cpu" if device == "cpu" else "cuda"]
        # the short options, the same in SPINEPS 1.x and 2.x; --cpu as 2.x spells it
        cmd = [exe, "sample", "-i", str(image), "-ms", "t2w", "-mv", "instance", "-dn", out.name, "-iic"]
        return cmd + (["--cpu"] if device == "cpu" else [])

    def output(self, image: Path, out: Path) -> tuple[Path, Path | None]:
        """The label file the engine wrote (and, for SPINEPS, its semantic mask)."""
        if self.key.startswith("totalsegmentator"):
            return out / "segmentation.nii.gz", None
        if self.key == "totalspineseg":
            return out / "step2_output" / image.name, None
        vert = sorted(out.rglob("*_seg-vert_msk.nii.gz"))  # TPTBox may nest them by subject
        spine = sorted(out.rglob("*_seg-spine_msk.nii.gz"))
        if not vert:
            raise ModelError(f"{self.title} wrote no *_seg-vert_msk.nii.gz into {out}")
        return vert[0], (spine[0] if spine else None)

    @property
    def scheme(self) -> str | None:
        """The label scheme of its output (None: the file names its labels itself)."""
        return {"totalspineseg": "totalspineseg", "spineps": "verse"}.get(self.key)


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return Path(sys.prefix) / module
    return Path(next(iter(spec.submodule_search_locations)))


def _shown(cmd: list[str]) -> str:
    return " ".join(c if " " not in c and "\n" not in c else repr(c) for c in cmd)


_GITHUB = "github.com"
ENGINES: dict[str, Engine] = {e.key: e for e in (
    Engine("totalsegmentator", "TotalSegmentator (CT)", "CT", "TotalSegmentator", "totalsegmentator",
           "TotalSegmentator", "totalsegmentator", "total", _GITHUB,
           "Every vertebra C1-S1, sacrum and spinal cord on CT (task total, spine classes only)."),
    Engine("totalsegmentator-mr", "TotalSegmentator (MR)", "MR", "TotalSegmentator", "totalsegmentator",
           "TotalSegmentator", "totalsegmentator", "total_mr", _GITHUB,
           "Vertebrae, discs, sacrum and spinal cord on MR (task total_mr); levels: use Identify levels."),
    Engine("totalspineseg", "TotalSpineSeg", "MR", "totalspineseg", "totalspineseg", "totalspineseg",
           "totalspineseg", "step2", _GITHUB,
           "Vertebrae and discs labelled by level, spinal cord and canal on MR (any contrast)."),
    Engine("spineps", "SPINEPS", "MR", "spineps", "spineps", "spineps", "spineps", "t2w+instance", _GITHUB,
           "Vertebrae by level, discs and endplates on sagittal T2w/T1w MR."),
)}


# -- the process ---------------------------------------------------------------------------------
def _lines(cmd: list[str], env: Mapping[str, str], cancel: Callable[[], bool] | None,
           tail: list[str]) -> Iterator[str]:
    """Run ``cmd`` in a process group of its own, yielding its output lines; on cancel the
    group is terminated (then killed) and :class:`InferenceCancelled` raised. ``tail``
    collects the last lines for an error message."""
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace", env=dict(env), start_new_session=True)
    except OSError as exc:
        raise ModelError(f"{cmd[0]}: cannot start ({exc})") from exc
    lines: queue.Queue = queue.Queue()

    def read() -> None:
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        while True:
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                if cancel is not None and cancel():
                    _stop(proc)
                    raise InferenceCancelled("cancelled; the engine was stopped") from None
                continue
            if line is None:
                break
            if line.strip():
                tail[:] = [*tail[-19:], line]
                yield line
        proc.wait()
    finally:
        if proc.poll() is None:
            _stop(proc)
    if proc.returncode != 0:
        last = next((t for t in reversed(tail) if t.strip()), "no output")
        raise ModelError(f"{Path(cmd[0]).name} failed (exit status {proc.returncode}): {last.strip()}")


def _stop(proc: subprocess.Popen) -> None:
    """Terminate the engine and everything it started; kill what ignores that."""
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _device(device: str) -> str:
    if device != "auto":
        return str(device)
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def run_engine(case: SpineCase, engine: Engine | str, device: str = "auto", *,
               cancel: Callable[[], bool] | None = None, env: Mapping[str, str] | None = None
               ) -> Generator[ProgressEvent, None, Prediction]:
    """Run ``engine`` on ``case`` (see the module docstring); yields progress, returns the
    prediction in the case's display order, canonical ids."""
    from ..io.export import export_image
    from ..io.nifti import load_labels_file

    engine = ENGINES[engine] if isinstance(engine, str) else engine
    env = dict(os.environ if env is None else env)
    state = engine.status(env)
    if not state.ready:
        raise ModelError(state.detail)
    dev = _device(device)
    t0 = time.perf_counter()
    yield ProgressEvent("device", message=f"{engine.title} {state.version or ''} on {dev}".replace("  ", " "))
    with tempfile.TemporaryDirectory(prefix="napari-spine-engine-") as tmp:
        work = Path(tmp)
        stem = "".join(c for c in case.case_id if c.isalnum()) or "case"
        image = work / f"sub-{stem}_T2w.nii.gz" if engine.key == "spineps" else work / f"{stem}.nii.gz"
        yield ProgressEvent("prepare", message="writing the image on its source grid")
        export_image(case, image)
        out = work / ("derivatives_seg" if engine.key == "spineps" else "out")
        tail: list[str] = []
        for line in _lines(engine.command(image, out, dev), env, cancel, tail):
            yield ProgressEvent("engine", message=line[-200:])
        labels_path, semantic = engine.output(image, out)
        if not labels_path.is_file():
            raise ModelError(f"{engine.title} finished but wrote no {labels_path.name} "
                             f"(last line: {tail[-1] if tail else 'none'})")
        yield ProgressEvent("finish", message="reading the engine's labels")
        result = load_labels_file(labels_path, label_scheme=engine.scheme)
        labels = _on_case_grid(case, result, labels_path, engine)
        if semantic is not None:  # SPINEPS: cord and canal come from its semantic mask
            sem = _on_case_grid(case, load_labels_file(semantic, label_scheme="verse"), semantic, engine)
            extra = np.isin(sem, (60, 61)) & (labels == 0)
            labels[extra] = sem[extra]
    pred = Prediction(engine.title, dev, labels=labels, region=(0, case.shape[0]),
                      class_ids=tuple(int(v) for v in np.unique(labels)))
    pred.timings["total_s"] = time.perf_counter() - t0
    pred.provenance = {"engine": engine.key, "package": engine.distribution, "version": state.version,
                       "task": engine.task, "device": dev, "command": engine.executable,
                       "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
    pred.messages.extend(result.warnings)
    yield ProgressEvent("done", message=f"{engine.title}: done")
    return pred


def _on_case_grid(case: SpineCase, result: SpineCase, path: Path, engine: Engine) -> np.ndarray:
    """The engine's labels in the case's display order, after checking they lie on its grid."""
    same = (result.shape == case.shape
            and np.allclose(result.source.affine, case.source.affine, atol=1e-3, rtol=1e-5))
    if not same:
        raise ModelError(f"{path}: {engine.title} wrote labels on another grid ({result.shape}, affine "
                         f"{np.round(result.source.affine, 3).tolist()}) than the case "
                         f"({case.shape}, {np.round(case.source.affine, 3).tolist()})")
    return np.array(result.labels, dtype=np.uint8, copy=True)


def _reachable(host: str, timeout: float = 3.0) -> bool:
    """Whether ``host`` answers on port 443 within ``timeout`` seconds, name lookup included
    (a lookup can hang well past a socket timeout on a machine without a network)."""
    answer: list[bool] = []

    def connect() -> None:
        try:
            with socket.create_connection((host, 443), timeout=timeout):
                answer.append(True)
        except OSError:
            answer.append(False)

    probe = threading.Thread(target=connect, daemon=True)
    probe.start()
    probe.join(timeout)
    return bool(answer and answer[0])


def download_weights(engine: Engine | str, *, cancel: Callable[[], bool] | None = None,
                     env: Mapping[str, str] | None = None, reachable: Callable[[str], bool] = _reachable
                     ) -> Generator[ProgressEvent, None, EngineStatus]:
    """Run the engine's own weight download (the user asked for it); yields its output as
    progress and returns the new status. Fails at once, naming the host, when the download
    host cannot be reached."""
    engine = ENGINES[engine] if isinstance(engine, str) else engine
    env = dict(os.environ if env is None else env)
    if not engine.installed():
        raise ModelError(engine.status(env).detail)
    yield ProgressEvent("prepare", message=f"checking that {engine.host} can be reached")
    if not reachable(engine.host):
        raise ModelError(f"{engine.title}: cannot reach {engine.host} to download its weights (offline?); "
                         f"nothing was downloaded. Fetch them on a connected machine into "
                         f"{engine.weights_dir(env)} or set the engine's weights folder")
    tail: list[str] = []
    for line in _lines(engine.download_command(), env, cancel, tail):
        yield ProgressEvent("download", message=line[-200:])
    return engine.status(env)


@dataclass
class EngineModel:
    """An engine in the model picker and ``load_model``: what the panel and the batch
    runner need of a model (its name, a description, a run)."""

    engine: Engine
    name: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or self.engine.title
        self.source = self.source or self.engine.key

    def describe(self) -> str:
        """What the engine segments and its state, for the model picker."""
        return f"{self.engine.about}\n{self.engine.status().detail}"

    def predict_iter(self, case: SpineCase, device: str = "auto", *, cancel=None, **_ignored):
        """:func:`run_engine` on ``case`` (the window options of the pipeline do not apply)."""
        return run_engine(case, self.engine, device, cancel=cancel)


def engine_model(key: str) -> EngineModel:
    """The engine ``key`` as a model (``ns.load_model("totalsegmentator")``)."""
    if key not in ENGINES:
        raise ModelError(f"{key!r} is not an engine ({', '.join(ENGINES)})")
    return EngineModel(ENGINES[key])

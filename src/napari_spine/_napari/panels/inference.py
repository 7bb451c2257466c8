"""The "Spine inference" dock widget: run a model on the current image, off the UI thread.

Model picker (the bundled model; TotalSegmentator, TotalSpineSeg and SPINEPS through their
own packages, each shown as ready, weights missing (with a *Download weights* button that
asks first) or not installed (with the pip extra); or a TorchScript file / nnU-Net folder /
MMCSD checkpoint), device picker (GPUs with name and free memory, then the CPU), whole volume
or the current sagittal slice, a progress bar with a Cancel button. The result is always
a *new* labels layer with anatomy colours and names; the annotator's layers are never
touched. Classifiers show their probability next to the case's recorded outcome.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QWidget,
)

from ...case import SpineCase
from .._layers import labels_layer_data, plain_case
from .._workers import Task
from .._workspace import Workspace
from ._common import note, refill, scrolling, side_by_side

if TYPE_CHECKING:
    import napari

DEFAULT_LABEL = "Bundled default (phantom-trained 3-D U-Net)"
SCOPES = ("Whole volume", "Current slice")
_DEFAULT_INFO = ("Vertebra, disc, canal and cord on CT and MR; trained on synthetic phantoms only "
                 "(a demonstration model, not a clinical one). Levels: use Identify levels.")


def case_for_layer(layer) -> SpineCase:
    """The layer's spine case, or one built from a plain napari image layer."""
    case = Workspace.case_of(layer)
    if case is not None:
        return case
    data = np.asarray(layer.data)
    if data.ndim not in (2, 3):
        raise ValueError(f"'{layer.name}' is {data.ndim}-D; inference needs a 2-D or 3-D image")
    if data.ndim == 2:  # one sagittal plane
        return plain_case(data[None], [1.0, *layer.scale], [0.0, *layer.translate], layer.name)
    return plain_case(data, layer.scale, layer.translate, layer.name)


def ask_trust(parent: QWidget, err) -> bool:
    """Ask the user whether a model file that carries code may run (names file and hash)."""
    text = (f"{err.path}\n\nis a {err.kind}: a program that runs on this computer when it is "
            "loaded and at every prediction, with your permissions.\n\nRun it only if you "
            f"trust where it came from.\n\nSHA-256: {err.sha256}")
    answer = QMessageBox.question(parent, "Run this model?", text,
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


class InferenceWidget(QWidget):
    """Pick a model and a device, run it on the current image, get a new labels layer.

    A model file that carries code (TorchScript) runs only after the user confirms it
    (:attr:`confirm_trust`, a question naming the file and its SHA-256); the answer is
    remembered for that file content.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.ws = Workspace(napari_viewer)
        self._models: dict[str, Any] = {}  # combo text -> SpineModel (loaded lazily)
        self._sources: dict[str, str] = {DEFAULT_LABEL: "default"}
        self.last_prediction = None
        self.last_layer = None
        self.confirm_trust = lambda err: ask_trust(self, err)
        self._build(scrolling(self))
        self.task = Task(progress=self.progress, status=self.status, buttons=(self.run_btn,),
                         cancel_button=self.cancel_btn)
        self._fill_devices()
        self._fill_images()
        self._describe_model(DEFAULT_LABEL)
        self.viewer.layers.events.inserted.connect(self._fill_images)
        self.viewer.layers.events.removed.connect(self._fill_images)

    def _build(self, lay) -> None:
        self.image, self.model, self.device, self.scope = QComboBox(), QComboBox(), QComboBox(), QComboBox()
        self.model.addItem(DEFAULT_LABEL)
        from ...inference.engines import ENGINES

        for engine in ENGINES.values():
            self._sources[engine.title] = engine.key
            self.model.addItem(engine.title)
        self.model.currentTextChanged.connect(self._describe_model)
        self.scope.addItems(SCOPES)
        load_file = QPushButton("Model file…")
        load_file.setToolTip("TorchScript with a model card, or an MMCSD DenseNet121 .pth")
        load_file.clicked.connect(self._choose_file)
        load_dir = QPushButton("Model folder…")
        load_dir.setToolTip("nnU-Net trained-model folder: v2 (plans.json, dataset.json, fold_*) "
                            "or v1 (plans.pkl, <fold>/model_final_checkpoint.model)")
        load_dir.clicked.connect(self._choose_folder)
        self.download_btn = QPushButton("Download weights…")
        self.download_btn.setToolTip("Run the engine's own weight download (asks first)")
        self.download_btn.clicked.connect(lambda: self.download())
        self.download_btn.setVisible(False)
        self.run_btn = QPushButton("Run")
        self.run_btn.clicked.connect(lambda: self.run())
        self.cancel_btn = QPushButton("Cancel")
        self.progress = QProgressBar()
        self.model_info, self.status, self.result = note(), note(), note()
        form = QFormLayout()
        form.addRow("Image", self.image)
        form.addRow("Model", self.model)
        form.addRow("", side_by_side(load_file, load_dir))
        form.addRow("Device", self.device)
        form.addRow("Region", self.scope)
        lay.addLayout(form)
        lay.addWidget(self.model_info)
        lay.addWidget(self.download_btn)
        lay.addWidget(side_by_side(self.run_btn, self.cancel_btn))
        for w in (self.progress, self.status, self.result):
            lay.addWidget(w)
        lay.addStretch(1)

    # -- choices ------------------------------------------------------------------------
    def _fill_devices(self) -> None:
        self.device.clear()
        try:
            from ...inference import available_devices

            devs = available_devices()
        except ImportError:
            self.device.addItem("PyTorch is not installed", None)
            self.run_btn.setEnabled(False)
            return
        self.device.addItem(f"Automatic ({devs[0].label})", "auto")
        for d in devs:
            self.device.addItem(d.label, d.name)

    def _fill_images(self, *_: Any) -> None:
        refill(self.image, [ly.name for ly in self.ws.layers_of("image")])

    def add_model_source(self, source: str) -> str:
        """Offer a model file/folder in the picker and select it; returns its label."""
        label = f"{Path(source).name} ({source})"
        if label not in self._sources:
            self._sources[label] = str(source)
            self.model.addItem(label)
        self.model.setCurrentText(label)
        return label

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model file", "",
                                              "Models (*.ts *.pt *.pth *.pt2);;All files (*)")
        if path:
            self.add_model_source(path)

    def _choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "nnU-Net trained-model folder")
        if path:
            self.add_model_source(path)

    def _engine(self, label: str):
        from ...inference.engines import ENGINES

        return ENGINES.get(self._sources.get(label, ""))

    def _describe_model(self, label: str) -> None:
        engine = self._engine(label)
        self.download_btn.setVisible(False)
        if engine is not None:
            status = engine.status()
            self.model_info.setText(f"{engine.about}\n{status.detail}")
            self.download_btn.setVisible(status.state == "weights missing")
            return
        model = self._models.get(label)
        if model is not None:
            self.model_info.setText(model.describe())
        elif label == DEFAULT_LABEL:
            self.model_info.setText(_DEFAULT_INFO)
        else:
            self.model_info.setText(f"{self._sources.get(label, '')} (loaded when run)")

    # -- running ------------------------------------------------------------------------
    def _job(self, label: str, case: SpineCase, device: str, slice_index: int | None):
        """Generator run in the worker: load the model if needed, then predict."""
        from ...inference import load_model, predict_iter
        from ...inference.types import ProgressEvent

        model = self._models.get(label)
        if model is None:
            yield ProgressEvent("prepare", message="loading the model")
            model = load_model(self._sources[label])
            self._models[label] = model
        return (yield from predict_iter(case, model, device, slice_index=slice_index,
                                        cancel=self.task.cancelled.is_set))

    def _slice_index(self, layer, case: SpineCase) -> int | None:
        if self.scope.currentText() != "Current slice":
            return None
        point = self.viewer.dims.point[-layer.ndim:]
        idx = layer.world_to_data(point)[0] if layer.ndim == 3 else 0
        return int(np.clip(round(float(idx)), 0, case.shape[0] - 1))

    def run(self, sync: bool = False):
        """Start a prediction on the chosen image (``sync`` runs it here, for scripts/tests).

        Returns the worker (``None`` when nothing started or with ``sync``; then the
        result is :attr:`last_prediction`).
        """
        layer = self.ws.layer_named(self.image.currentText())
        if layer is None:
            self.status.setText("Open an image first.")
            return None
        try:
            case = case_for_layer(layer)
        except ValueError as exc:
            self.status.setText(str(exc))
            return None
        label = self.model.currentText()
        if not self._trusted(label):
            return None
        device = self.device.currentData() or "auto"
        job = lambda: self._job(label, case, device, self._slice_index(layer, case))  # noqa: E731
        self.result.setText("")
        self.last_prediction = None
        worker = self.task.start(job, desc=f"Running on '{layer.name}'", sync=sync,
                                 done=lambda res: self._finish(layer, case, res), failed=self._failed)
        return self.last_prediction if sync else worker

    def download(self, confirmed: bool | None = None, sync: bool = False):
        """Fetch the selected engine's weights with its own download, after the user agrees
        (``confirmed`` answers the question for scripts and tests)."""
        from ...inference.engines import download_weights

        label = self.model.currentText()
        engine = self._engine(label)
        if engine is None:
            return None
        if confirmed is None:
            answer = QMessageBox.question(
                self, "Download weights?",
                f"Download the weights of {engine.title} into\n{engine.weights_dir()}\n\nwith "
                f"{engine.title}'s own download (several hundred MB from {engine.host})?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
            confirmed = answer == QMessageBox.StandardButton.Yes
        if not confirmed:
            self.status.setText("Nothing was downloaded.")
            return None

        def done(status) -> str:
            self._describe_model(label)
            return status.detail

        return self.task.start(lambda: download_weights(engine, cancel=self.task.cancelled.is_set),
                               desc=f"Downloading {engine.title} weights", sync=sync, done=done,
                               failed=lambda err: f"Failed: {err}")

    def cancel(self) -> None:
        """Stop the running prediction at the next window batch."""
        self.task.cancel()

    def _failed(self, err: BaseException) -> str:
        from ...inference import InferenceCancelled

        return "Cancelled; nothing was added." if isinstance(err, InferenceCancelled) else f"Failed: {err}"

    def _finish(self, layer, case: SpineCase, res) -> str:
        self.last_prediction = res
        self._describe_model(self.model.currentText())
        t = res.timings.get("total_s", 0.0)
        if res.labels is None:  # classifier
            lines = [f"{name}: {p:.2f}" for name, p in res.scores.items()]
            rec = res.recorded
            lines.append("Recorded outcome: " + (
                f"{rec['outcome_name']} (1-year VAS {rec.get('vas_post_1y')})" if rec else "unknown"))
            self.result.setText("\n".join(lines))
            return f"{res.model_name} on {res.device} in {t:.1f} s"
        data, kwargs, _ = labels_layer_data(case, res.labels,
                                            name=f"{case.case_id} prediction ({res.model_name})")
        kwargs["scale"], kwargs["translate"] = layer.scale, layer.translate
        kwargs["metadata"] = {**kwargs["metadata"], "napari_spine_prediction": {
            "model": res.model_name, "device": res.device, "region": res.region,
            "timings": dict(res.timings), "provenance": dict(res.provenance)}}
        self.last_layer = self.viewer.add_labels(data, **kwargs)
        found = len(np.unique(res.labels)) - 1
        extra = "; ".join(res.messages)
        return (f"{res.model_name} on {res.device} in {t:.1f} s: {found} structures"
                + (f" ({extra})" if extra else ""))

    def _trusted(self, label: str) -> bool:
        """Ask before a model file that carries code is loaded; False when the user says no."""
        from ...inference.model import trust_question
        from ...inference.trust import remember_trust

        if label in self._models or self._engine(label) is not None:  # engines: installed packages
            return True
        try:
            err = trust_question(self._sources[label])
        except OSError as exc:
            self.status.setText(f"Failed: {exc}")
            return False
        if err is None:
            return True
        if not self.confirm_trust(err):
            self.status.setText(f"Not run: {err.path} was not trusted; nothing in it was run.")
            return False
        remember_trust(err.path, err.sha256)
        return True


"""The "Save" part of the correction panel: output folder, restore, labels, landmarks,
training set. Exports are the core's (:func:`~napari_spine.io.export.export_labels`,
:func:`~napari_spine.io.nnunet_raw.export_nnunet_dataset`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
)

from ...case import SpineCase
from ...io.export import export_labels
from ...io.files import safe_name
from ...io.nnunet_raw import export_nnunet_dataset
from . import _correction_guard as _guard
from ._common import buttons
from ._rulers_box import rulers_of

__all__ = ["SaveBox"]


class SaveBox(QGroupBox):
    """Where corrected labels go, and the restore offer of an earlier session's edits."""

    def __init__(self, panel: Any):
        """``panel`` is the correction panel: its output folder, layer and sessions."""
        super().__init__("Save")
        self.panel = panel
        self.training: list[SpineCase] = []
        self.out_edit = QLineEdit(str(panel.output))
        self.out_edit.editingFinished.connect(lambda: panel.set_output(self.out_edit.text()))
        out_btn = QPushButton("...")
        out_btn.clicked.connect(self._choose_output)
        self.scheme = QComboBox()
        self.scheme.addItems(["native", "canonical"])
        self.status = panel.status  # one status line for the panel
        lay = QFormLayout(self)
        row = QHBoxLayout()
        row.addWidget(self.out_edit, 1)
        row.addWidget(out_btn)
        lay.addRow("Output folder", row)
        lay.addRow("Label ids", self.scheme)
        for b in buttons(self, (("export_btn", "Save labels (NIfTI)", lambda: self.save_labels()),
                                ("seg_btn", "Save labels (DICOM SEG)", lambda: self.save_seg()),
                                ("landmarks_btn", "Save landmarks (JSON + CSV)", lambda: self.save_landmarks()),
                                ("train_btn", "Add case to training set", lambda: self.add_to_training()),
                                ("nnunet_btn", "Export nnU-Net dataset (0 cases)", lambda: self.export_training()))):
            lay.addRow(b)
        self.seg_btn.setVisible(False)  # for cases read from DICOM (see show_dicom)
        lay.addRow(self.status)

    def show_dicom(self, case) -> None:
        """Offer the DICOM SEG save for a case read from DICOM."""
        from ._dicom_info import seg_possible

        self.seg_btn.setVisible(seg_possible(case))

    @property
    def output(self) -> Path:
        """The panel's output folder."""
        return self.panel.output

    def _choose_output(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder", str(self.output))
        if folder:
            self.panel.set_output(folder)

    def _case(self, layer=None):
        layer = layer if layer is not None else self.panel.labels_layer()
        case = self.panel.ws.case_of(layer)
        if case is None:
            self.status.setText("This labels layer does not belong to a spine case.")
        return layer, case

    def _export(self, path, suffix: str, write, layer=None):
        """``write(case, labels, target)`` into ``path`` (default: the output folder, the
        case's name and ``suffix``): ``(layer, case, result)``, the result None when it failed
        or the user kept an existing file (the reason is in the status line, never raised
        into Qt)."""
        layer, case = self._case(layer)
        if case is None:
            return layer, None, None
        target = Path(path) if path else self.output / f"{safe_name(case.case_id)}{suffix}"
        if not path and target.exists() and not _guard.confirm_overwrite(self, target):
            self.status.setText(f"Not saved: {target} was kept.")
            return layer, case, None
        try:
            self.output.mkdir(parents=True, exist_ok=True)
            return layer, case, write(case, np.asarray(layer.data), target)
        except Exception as exc:  # shown, never raised into Qt
            self.status.setText(f"Not saved: {exc}")
            return layer, case, None

    def save_labels(self, path: str | Path | None = None, layer=None) -> Path | None:
        """Export the labels on the source grid; the journal is closed once they are saved.
        Refused while an earlier session's edits wait (saving would hide them)."""
        s = self.panel.session(layer)
        if s is not None and s.pending:
            self.status.setText("Not saved: restore or discard the earlier session's edits first.")
            return None
        if s is not None and s.read_only is None:
            self.panel._commit_paint()  # a stroke not yet recorded is part of what is saved
        layer, case, res = self._export(path, "_labels.nii.gz", lambda case, data, target: export_labels(
            case, data, target, scheme=self.scheme.currentText()), layer)
        if res is None:
            return None
        if s is not None:
            s.mark_saved()
        self.status.setText(f"Saved and verified {res.path} ({len(res.counts)} structures, {res.scheme} ids)")
        return res.path

    def save_seg(self, path: str | Path | None = None) -> Path | None:
        """Save the labels as a DICOM SEG referencing the case's series (verified)."""
        from ...io.dicomseg import export_seg

        _, _, res = self._export(path, "_seg.dcm", export_seg)
        if res is None:
            return None
        self.status.setText(f"Saved and verified {res.path} ({len(res.segments)} segments)")
        return res.path

    def save_landmarks(self) -> list[Path]:
        """Save the case's landmarks (as shown, after any shift) as JSON and CSV."""
        from .._writer import write_landmarks

        layer = self.panel.labels_layer()
        points = self.panel.ws.landmarks_layer(self.panel.ws.case_of(layer)) if layer is not None else None
        if points is None:
            self.status.setText("No landmarks layer for this case.")
            return []
        case = self.panel.ws.case_of(points)
        stem = safe_name(case.case_id if case is not None else points.name)
        out = []
        rulers = rulers_of(self.panel.ws, case)
        try:
            self.output.mkdir(parents=True, exist_ok=True)
            for ext in (".json", ".csv"):
                out += [Path(p) for p in write_landmarks(str(self.output / f"{stem}_landmarks{ext}"), points.data,
                                                         {"metadata": points.metadata, "features": points.features},
                                                         rulers=rulers)]
        except Exception as exc:  # shown, never raised into Qt
            self.status.setText(f"Landmarks not saved: {exc}")
            return []
        self.status.setText(f"Saved {', '.join(p.name for p in out)}")
        return out

    def add_to_training(self) -> int:
        """Keep a copy of the corrected case for an nnU-Net training-set export."""
        layer, case = self._case()
        if case is None:
            return len(self.training)
        self.training = [c for c in self.training if c.case_id != case.case_id]
        self.training.append(case.with_labels(np.array(layer.data, copy=True)))
        self.nnunet_btn.setText(f"Export nnU-Net dataset ({len(self.training)} cases)")
        return len(self.training)

    def export_training(self, dataset_id: int = 500, name: str = "SpineCorrected") -> Path | None:
        """Write the collected cases as an nnU-Net ``Dataset###_<name>`` folder."""
        if not self.training:
            self.status.setText("Add corrected cases to the training set first.")
            return None
        try:
            root = export_nnunet_dataset(self.training, self.output, dataset_id=dataset_id, name=name)
        except Exception as exc:  # shown, never raised into Qt
            self.status.setText(f"nnU-Net export failed: {exc}")
            return None
        self.status.setText(f"nnU-Net dataset written: {root}")
        return root

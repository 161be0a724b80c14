"""Model ▸ Retrain: the options dialog and the live training progress window."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGridLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from fabricsearch.catalogue import ImageRecord, ModelInfo
from fabricsearch.gui.dialogs.progress_dialog import RateEstimator, format_duration
from fabricsearch.gui.widgets.plot import LinePlot
from fabricsearch.gui.workers import Worker
from fabricsearch.jobs import Progress
from fabricsearch.services.training import CODE_LENGTHS, FINETUNE_BLOCKS


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def cuda_name() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001 - only for display
        pass
    return ""


def new_labelled_count(records: Sequence[ImageRecord], model: ModelInfo | None) -> int:
    """Labelled images whose labels changed after `model` was trained (all if no model)."""
    labelled = [r for r in records if r.labelled]
    if model is None:
        return len(labelled)
    return sum(1 for r in labelled if (r.labelled_at or 0.0) > model.created)


def available_methods() -> list[str]:
    try:
        from fabricsearch.services.training import available_methods as methods

        return list(methods())
    except ImportError:
        return ["dvsh"]


def needs_labels(method: str) -> bool:
    """`services.training.needs_labels`; True where the registry cannot answer."""
    try:
        from fabricsearch.services.training import needs_labels as method_needs_labels

        return method_needs_labels(method)
    except (ImportError, KeyError):
        return True


class TrainOptionsDialog(QDialog):
    """Choose method, code length, epochs and device; `config()` is the resulting TrainConfig."""

    def __init__(
        self,
        records: Sequence[ImageRecord],
        active: ModelInfo | None,
        base_config: Any,
        parent: QWidget | None = None,
        step_seconds: Callable[[str, bool], float | None] | None = None,
    ) -> None:
        """`step_seconds(kind, gpu)`: this computer's measured seconds per training step for
        runs of a `config.run_kind` (`services.training.measured_step_seconds`); the estimates
        scale it by the library."""
        super().__init__(parent)
        self.setWindowTitle("Retrain on new samples")
        self.base_config = base_config
        labelled = sum(1 for r in records if r.labelled)
        self.labelled, self.images = labelled, len(records)
        new = new_labelled_count(records, active)
        from fabricsearch.services.versions import is_automatic

        if active is None:
            text = f"No model yet. <b>{labelled:,}</b> labelled images will be used for training."
        elif is_automatic(active):
            # The shipped or label-free model has seen no label: every label is new to it.
            text = (
                "No trained model yet (search uses a label-free model). "
                f"<b>{labelled:,}</b> labelled images will be used for training."
            )
        else:
            text = (
                f"<b>{new:,}</b> labelled images are new or changed since the current model "
                f"<i>{active.version}</i>; training uses all <b>{labelled:,}</b> labelled images."
            )
        self.labels_text = text
        self.info = QLabel(text)
        self.info.setWordWrap(True)
        from fabricsearch.config import run_kind
        from fabricsearch.services.training import describe_preset as describe
        from fabricsearch.services.training import presets

        # Presets in plain words with a time estimate; choosing one sets the fields below.
        self.preset_box = QComboBox()
        gpu = cuda_available()
        for key, preset in presets().items():
            kind = run_kind(int(preset.changes.get("finetune") or 0), preset.changes["backbone"])
            step_s = step_seconds(kind, gpu) if step_seconds is not None else None
            # Quick keeps the configured epochs; Thorough sets its own.
            epochs = None if "epochs" in preset.changes else base_config.epochs
            text = describe(preset, max(labelled, 2), 0, gpu, step_s, epochs)
            self.preset_box.addItem(text, key)
        self.preset_box.addItem("Custom — choose the settings below", "custom")
        self.method_box = QComboBox()
        for name in available_methods():
            self.method_box.addItem(METHOD_LABELS.get(name, name.upper()), name)
        _select_data(self.method_box, getattr(active, "method", None) or base_config.method)
        self.bits_box = QComboBox()
        for bits in CODE_LENGTHS:
            self.bits_box.addItem(f"{bits} bits", bits)
        _select_data(self.bits_box, getattr(active, "bits", None) or base_config.bits)
        from fabricsearch.services.training import backbone_available, backbone_labels

        self.backbone_box = QComboBox()
        for key, label in backbone_labels().items():
            if backbone_available(key):
                self.backbone_box.addItem(label, key)
        self.backbone_box.setToolTip(
            "The image network under the search model. The pretrained one stays as it is and "
            "only the search layers train, on features computed once per photo."
        )
        from PySide6.QtWidgets import QCheckBox

        self.finetune_box = QCheckBox("Fine-tune the image network's last blocks too")
        self.finetune_box.setToolTip(
            f"Advanced: trains the last {FINETUNE_BLOCKS} blocks of the pretrained network with the search "
            "layers, on augmented photos. Minutes to hours on a CPU; a GPU is recommended."
        )
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(1, 500)
        self.epochs_spin.setValue(base_config.epochs)
        self.device_box = QComboBox()
        self.device_box.addItem("Auto", "auto")
        has_cuda = cuda_available()
        name = cuda_name()
        self.device_box.addItem(f"CUDA ({name})" if name else "CUDA (not available)", "cuda")
        self.device_box.model().item(1).setEnabled(has_cuda)
        self.device_box.addItem("CPU", "cpu")
        _select_data(
            self.device_box,
            base_config.device if base_config.device in ("auto", "cpu", "cuda") else "auto",
        )
        self.device_note = QLabel(
            "A GPU was found: training will use it."
            if has_cuda
            else "No CUDA GPU found: training runs on the CPU."
        )
        self.device_note.setStyleSheet("color: palette(placeholder-text);")
        form = QFormLayout()
        form.addRow("Preset", self.preset_box)
        form.addRow("Method", self.method_box)
        form.addRow("Image network", self.backbone_box)
        form.addRow("Advanced", self.finetune_box)
        form.addRow("Code length", self.bits_box)
        form.addRow("Epochs", self.epochs_spin)
        form.addRow("Device", self.device_box)
        form.addRow("", self.device_note)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Start training")
        self.start_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.method_note = QLabel()
        self.method_note.setWordWrap(True)
        self.method_note.setStyleSheet("color: palette(placeholder-text);")
        form.addRow("", self.method_note)
        self.method_box.currentIndexChanged.connect(self._method_changed)
        self._method_changed()
        self.preset_box.currentIndexChanged.connect(self._preset_changed)
        for signal in (
            self.method_box.currentIndexChanged,
            self.backbone_box.currentIndexChanged,
            self.finetune_box.toggled,
            self.epochs_spin.valueChanged,
        ):
            signal.connect(self._settings_edited)
        from fabricsearch.services.training import DEFAULT_BACKBONE

        default_preset = "quick" if self.backbone_box.findData(DEFAULT_BACKBONE) >= 0 else "custom"
        _select_data(self.preset_box, default_preset)
        self._preset_changed()
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.info)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def _preset_changed(self) -> None:
        """A preset fills in method, image network, fine-tuning and epochs (Custom: no change)."""
        from fabricsearch.services.training import get_preset

        key = self.preset_box.currentData()
        if not key or key == "custom":
            return
        ch = get_preset(key).changes
        self._applying_preset = True
        try:
            _select_data(self.method_box, ch["method"])
            self._method_changed()
            _select_data(self.backbone_box, ch["backbone"])
            self.finetune_box.setChecked(bool(ch.get("finetune")))
            if "epochs" in ch:
                self.epochs_spin.setValue(int(ch["epochs"]))
        finally:
            self._applying_preset = False

    def _settings_edited(self) -> None:
        """A field changed by hand: the settings are no longer the preset's, say Custom."""
        if getattr(self, "_applying_preset", False) or not hasattr(self, "preset_box"):
            return
        self.preset_box.blockSignals(True)
        _select_data(self.preset_box, "custom")
        self.preset_box.blockSignals(False)

    def _method_changed(self) -> None:
        from fabricsearch.services.training import default_backbone_for

        method = self.method_box.currentData()
        _select_data(self.backbone_box, default_backbone_for(method))
        self.finetune_box.setEnabled(needs_labels(method) and method.startswith("dvsh"))
        if not self.finetune_box.isEnabled():
            self.finetune_box.setChecked(False)
        label_free = not needs_labels(method)
        self.epochs_spin.setEnabled(not label_free)  # fitted in one pass
        if label_free:
            self.info.setText(
                f"<b>{self.images:,}</b> images in the library; the training split is used, "
                "labelled or not."
            )
            self.start_button.setEnabled(self.images >= 2)
            self.method_note.setText(
                f"{method.upper()} needs no labels: it is fitted on every image of the "
                "training split, in seconds (on the pretrained network's features, or on "
                "colour and texture descriptors with the compact network)."
            )
        else:
            self.info.setText(self.labels_text)
            self.start_button.setEnabled(self.labelled >= 2)
            self.method_note.setText(
                "" if self.labelled >= 2 else "Label at least two images to train this method."
            )

    def _preset_finetune(self) -> int | None:
        from fabricsearch.services.training import get_preset

        key = self.preset_box.currentData()
        if not key or key == "custom":
            return None
        return int(get_preset(key).changes.get("finetune") or 0) or None

    def config(self) -> Any:
        return dataclasses.replace(
            self.base_config,
            method=self.method_box.currentData(),
            bits=int(self.bits_box.currentData()),
            epochs=int(self.epochs_spin.value()),
            device=self.device_box.currentData(),
            backbone=self.backbone_box.currentData() or "compact",
            finetune=(
                FINETUNE_BLOCKS if self._preset_finetune() is None else self._preset_finetune()
            )
            if self.finetune_box.isChecked() and self.backbone_box.currentData() != "compact"
            else 0,
        )


#: Plain words for the method choice (the acronyms alone say nothing to a librarian).
METHOD_LABELS = {
    "dvsh": "DVSH — deep variational and structural hashing (recommended)",
    "dvsh1a": "DVSH without the variational module (comparison)",
    "dvsh1b": "DVSH without the structural module (comparison)",
    "dvsh2a": "DVSH without either module (comparison)",
    "dnnh": "DNNH — deep neural network hashing (comparison, compact network)",
    "dsah": "DSaH — saliency-guided hashing (comparison, compact network)",
    "tsn": "TSN — texture-synthesis-guided hashing (comparison, compact network)",
    "dshgan": "DSH-GANs — hashing with generated images (comparison, compact network)",
    "head": "Simple head — one hidden layer on the network's features (comparison)",
    "itq": "ITQ — label-free, fitted in seconds",
    "lsh": "LSH — label-free random projections (baseline)",
}

NOT_LOSS = {
    "epoch",
    "epochs",
    "step",
    "samples/s",
    "samples_per_s",
    "eta_s",
    "val_mAP",
    "lr",
    "img/s",
    "images",  # LSH/ITQ count the images they collect: not a loss
}


def loss_terms(info: dict[str, Any]) -> dict[str, float]:
    """The loss terms of a training report ("loss" = the total, first), skipping rates and metrics."""
    out = {}
    if isinstance(info.get("loss"), int | float):
        out["loss"] = float(info["loss"])
    for key, value in info.items():
        if key in NOT_LOSS or key in out or isinstance(value, bool):
            continue
        if isinstance(value, int | float) and math.isfinite(value):
            out[key] = float(value)
    return out


class TrainingProgressDialog(QDialog):
    """Live loss curve, validation mAP, samples/s, ETA and Cancel for a training worker."""

    def __init__(self, worker: Worker, config: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.worker = worker
        self.epochs = getattr(config, "epochs", None)
        self.setWindowTitle("Training")
        self.resize(640, 480)
        epochs = f"{config.epochs} epoch{'' if config.epochs == 1 else 's'}"
        if not needs_labels(config.method):
            epochs = "fitted in one pass, no labels needed"  # LSH/ITQ have no epochs
            self.epochs = 1
        from fabricsearch.services.training import backbone_labels

        network = backbone_labels().get(getattr(config, "backbone", ""), "")
        network = f" · on {network.split(',')[0].split(' (')[0]}" if network else ""
        self.header = QLabel(
            f"Training <b>{config.method}</b> · {config.bits} bits · {epochs}{network}"
        )
        self.stage_label = QLabel("Preparing…")
        self.stage_label.setWordWrap(True)
        # When and why the loop stopped before its last epoch (early stopping), kept shown
        # while the next stages (the compared head, encoding) run.
        self.stop_label = QLabel()
        self.stop_label.setWordWrap(True)
        self.stop_label.setVisible(False)
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)
        self.loss_plot = LinePlot("Training loss", "step")
        self.map_plot = LinePlot("Validation mAP", "epoch")
        self.map_plot.y_range = (0.0, 1.0)
        self.map_plot.setMinimumHeight(120)
        self.map_label = QLabel("—")
        self.terms_label = QLabel(" ")
        self.terms_label.setStyleSheet("color: palette(placeholder-text);")
        self.speed_label = QLabel("—")
        self.eta_label = QLabel("—")
        self.epoch_label = QLabel("—")
        stats = QGridLayout()
        for col, (name, lab) in enumerate(
            (
                ("Epoch", self.epoch_label),
                ("Val mAP", self.map_label),
                ("Samples/s", self.speed_label),
                ("Time left", self.eta_label),
            )
        ):
            title = QLabel(name)
            title.setStyleSheet("color: palette(placeholder-text);")
            stats.addWidget(title, 0, col)
            lab.setStyleSheet("font-size: 14pt;")
            stats.addWidget(lab, 1, col)
        # While it runs: Cancel (stops it) and Run in background (hides the window; Model ▸
        # Training progress and the status bar bring it back). Close only once it has ended.
        self.cancel_button = QPushButton("Cancel training")
        self.cancel_button.setAutoDefault(False)  # Enter must not stop a training
        self.cancel_button.clicked.connect(self.cancel)
        self.hide_button = QPushButton("Run in background")
        self.hide_button.setToolTip(
            "Hide this window; Model ▸ Training progress or the status bar shows it again"
        )
        self.hide_button.clicked.connect(self.hide)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.accept)
        buttons = QDialogButtonBox()
        buttons.addButton(self.cancel_button, QDialogButtonBox.ButtonRole.RejectRole)
        buttons.addButton(self.hide_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.close_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.close_button.setVisible(False)  # after addButton, which shows it
        self.hide_button.setDefault(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.header)
        layout.addWidget(self.stage_label)
        layout.addWidget(self.stop_label)
        layout.addWidget(self.bar)
        layout.addLayout(stats)
        layout.addWidget(self.loss_plot, 3)
        layout.addWidget(self.terms_label)
        layout.addWidget(self.map_plot, 2)
        layout.addWidget(buttons, 0, Qt.AlignmentFlag.AlignRight)
        self._rate = RateEstimator()
        self._step = 0
        self._have_sps = False
        self._train_total: int | None = None
        self.last_progress: Progress | None = None
        self.outcome = ""
        worker.progress.connect(self.on_progress)
        worker.finished.connect(self._on_finished)
        worker.failed.connect(self._on_failed)
        worker.cancelled.connect(self._on_cancelled)

    def on_progress(self, p: Progress) -> None:
        self.last_progress = p
        info = p.info or {}
        stage = p.stage.capitalize()
        self.stage_label.setText(f"{stage}: {p.message}" if p.message else stage)
        if info.get("stopped_early") and p.message:
            self.stop_label.setText(f"Training {p.message}.")
            self.stop_label.setVisible(True)
        if p.total:
            self.bar.setRange(0, p.total)
            self.bar.setValue(min(p.done, p.total))
        else:
            self.bar.setRange(0, 0)
        if "epoch" in info:
            total_epochs = info.get("epochs", self.epochs)
            self.epoch_label.setText(
                f"{info['epoch']}" + (f" / {total_epochs}" if total_epochs else "")
            )
        x = float(info.get("step", p.done))
        terms = loss_terms(info) if p.stage == "train" else {}
        if terms:
            # Terms have very different scales (KLD can be 50× the total): plot the total,
            # list the terms as text.
            self._step = int(x)
            plotted = {"loss": terms["loss"]} if "loss" in terms else terms
            for key, value in plotted.items():
                self.loss_plot.add_point(key, x, value)
            self.terms_label.setText("  ·  ".join(f"{k} {v:.4g}" for k, v in terms.items()))
        if isinstance(info.get("val_mAP"), int | float):
            self.map_label.setText(f"{info['val_mAP']:.3f}")
            if not terms:  # a validation report (step reports repeat the best value so far)
                epoch = float(info.get("epoch", len(self.map_plot.series("val mAP")) + 1))
                self.map_plot.add_point("val mAP", epoch, float(info["val_mAP"]))
        rate, eta = self._rate.update(p)
        sps = info.get("samples/s", info.get("samples_per_s"))
        if isinstance(sps, int | float):
            self._have_sps = True
            self.speed_label.setText(f"{sps:,.0f}")
        elif rate and p.stage == "train" and not self._have_sps:
            self.speed_label.setText(f"{rate:,.1f} {p.unit}/s")
        eta_s = info.get("eta_s", eta)
        if isinstance(eta_s, int | float):
            self.eta_label.setText(format_duration(float(eta_s)))

    def cancel(self) -> None:
        self.cancel_button.setEnabled(False)
        self.stage_label.setText("Cancelling… (stops after the current batch)")
        self.worker.cancel()

    def _end(self, text: str, outcome: str) -> None:
        self.outcome = outcome
        self.stage_label.setText(text)
        self.cancel_button.setVisible(False)
        self.hide_button.setVisible(False)
        self.close_button.setVisible(True)
        self.close_button.setDefault(True)
        if self.bar.maximum() == 0:
            self.bar.setRange(0, 1)
        if outcome == "finished":
            self.bar.setValue(self.bar.maximum())
            self.eta_label.setText("done")
        else:
            self.eta_label.setText("—")  # no time is left of a stopped training

    def _on_finished(self, info: Any) -> None:
        self._end(finished_message(info), "finished")

    def _on_failed(self, message: str) -> None:
        self._end(f"<span style='color:#b23a48'>Training failed: {message}</span>", "failed")

    def _on_cancelled(self) -> None:
        self._end("Training cancelled; the previous model stays active.", "cancelled")

    def reject(self) -> None:  # Esc and the window's ×: ask before stopping a running training
        if not self.worker.running:
            super().reject()
        elif self.cancel_button.isEnabled() and self.confirm_cancel():
            self.cancel()

    def confirm_cancel(self) -> bool:
        answer = QMessageBox.question(
            self,
            "Cancel the training?",
            "Stop the training after the current batch? The current model stays active.\n\n"
            "To keep it running, choose No (Run in background hides this window).",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes


def finished_message(info: Any) -> str:
    """What a finished training says: whether the new model is active, and why (or why not)."""
    from html import escape

    from fabricsearch.services.training import stop_reason
    from fabricsearch.services.versions import read_decision

    version = escape(getattr(info, "version", ""))
    decision = read_decision(info) if info is not None else None
    stopped = stop_reason(info) if info is not None else ""
    # Why it ended before its last epoch, when it did: a run that "stops at epoch 25 of 30"
    # without a word looks broken.
    stopped = f" Training {escape(stopped)}." if stopped else ""
    if decision is None:
        return f"Finished: model <b>{version}</b>.{stopped}"
    if decision.activate:
        return (
            f"Finished: model <b>{version}</b> is now active ({escape(decision.reason)}).{stopped}"
        )
    return (
        f"Finished: model <b>{version}</b> was saved but <b>not activated</b>: "
        f"{escape(decision.reason)}. The previous model stays active; Model ▸ Versions can "
        f"switch to the new one.{stopped}"
    )


def _select_data(box: QComboBox, value: Any) -> None:
    i = box.findData(value)
    if i >= 0:
        box.setCurrentIndex(i)

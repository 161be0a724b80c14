# ruff: noqa: F811 - pytest fixtures imported from test_gui_support are redefined as arguments
"""GUI: retrain from the menu with live progress, cancel a training, versions, evaluate, about."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_gui_support import (  # noqa: F401 - fixtures
    fabric_folder,
    gui_env,
    library_path,
    library_template,
    open_library,
    trained_library_path,
    trained_template,
    window,
)

pytestmark = pytest.mark.gui


def test_retrain_from_menu(window, library_path: Path, qtbot) -> None:
    from fabricsearch.gui.dialogs.train_dialog import TrainingProgressDialog, TrainOptionsDialog

    open_library(window, library_path)
    assert window.library.active_model() is None
    window.train_action.trigger()
    options = window.last_dialog
    assert isinstance(options, TrainOptionsDialog)
    assert "24" in options.info.text()
    assert options.method_box.findData("dvsh") >= 0
    assert [options.bits_box.itemData(i) for i in range(options.bits_box.count())] == [
        32,
        64,
        128,
        256,
    ]
    options.epochs_spin.setValue(2)
    options.bits_box.setCurrentIndex(options.bits_box.findData(32))
    options.device_box.setCurrentIndex(options.device_box.findData("cpu"))
    seen = []
    with qtbot.waitSignal(window.trainingEnded, timeout=120_000) as blocker:
        options.accept()
        dialog = window.last_dialog
        assert isinstance(dialog, TrainingProgressDialog)
        dialog.worker.progress.connect(seen.append)
    assert blocker.args == ["finished"]
    assert dialog.bar.value() == dialog.bar.maximum() > 0
    assert dialog.loss_plot.series("loss")  # the live curve got points
    n_val = sum(1 for s in window.library.splits().values() if s == "val")
    # Validation runs every epoch when there are at least two validation images.
    assert len(dialog.map_plot.series("val mAP")) == (2 if n_val >= 2 else 0)
    assert any(p.stage == "train" for p in seen)
    active = window.library.active_model()
    assert active is not None
    assert active.bits == 32
    assert active.version in window.model_label.text()
    assert dialog.close_button.isVisible()
    assert not dialog.cancel_button.isVisible()


def test_training_dialog_plots_reports(qtbot) -> None:
    from fabricsearch.config import TrainConfig
    from fabricsearch.gui.dialogs.train_dialog import TrainingProgressDialog
    from fabricsearch.gui.workers import Worker
    from fabricsearch.jobs import Progress

    dialog = TrainingProgressDialog(
        Worker(lambda progress=None, cancel=None: None), TrainConfig(epochs=2)
    )
    qtbot.addWidget(dialog)
    for step in range(1, 5):
        info = {
            "epoch": 1 + (step > 2),
            "list": 8.0 - step,
            "kld": 400.0,
            "loss": 9.0 - step,
            "samples/s": 120.0,
            "eta_s": 65.0,
        }
        if step > 2:
            info["val_mAP"] = 0.4  # step reports repeat the best value so far
        dialog.on_progress(Progress("train", step, 4, "step", info=info))
        if step == 2:
            dialog.on_progress(
                Progress("train", step, 4, "step", info={"epoch": 1, "val_mAP": 0.4})
            )
    dialog.on_progress(Progress("train", 4, 4, "step", info={"epoch": 2, "val_mAP": 0.55}))
    assert dialog.loss_plot.series("loss") == [(1, 8.0), (2, 7.0), (3, 6.0), (4, 5.0)]
    assert dialog.loss_plot.series_names() == ["loss"]  # KLD's scale would flatten the curve
    assert dialog.map_plot.series("val mAP") == [(1.0, 0.4), (2.0, 0.55)]
    assert dialog.map_label.text() == "0.550"
    assert dialog.epoch_label.text() == "2 / 2"
    assert dialog.speed_label.text() == "120"
    assert dialog.eta_label.text() == "1 min 05 s"
    assert "kld 400" in dialog.terms_label.text()


def test_cancel_training_keeps_previous_model(window, trained_library_path: Path, qtbot) -> None:
    import dataclasses

    open_library(window, trained_library_path)
    before = window.library.active_model()
    cfg = dataclasses.replace(window.training.base_config(), epochs=50)
    worker = window.training.start_training(cfg)
    dialog = window.last_dialog
    with qtbot.waitSignal(window.trainingEnded, timeout=120_000) as blocker:
        worker.progress.connect(lambda p: p.stage == "train" and dialog.cancel_button.click())
    assert blocker.args == ["cancelled"]
    assert worker.state == "cancelled"
    assert window.library.active_model().version == before.version
    assert len(window.library.models()) == 1
    assert "cancelled" in dialog.stage_label.text()


def test_versions_switch_back(window, trained_library_path: Path, qtbot) -> None:
    from fabricsearch.gui.dialogs.versions_dialog import VersionsDialog

    open_library(window, trained_library_path)
    first = window.library.active_model()
    with qtbot.waitSignal(window.trainingEnded, timeout=120_000):
        window.training.start_training(window.training.base_config())
    # 4 labelled test images cannot judge the new model: it is recorded but not activated,
    # and the progress window says so (docs/evaluation.md, "Activation").
    assert "not activated" in window.train_dialog.stage_label.text()
    assert window.library.active_model().version == first.version
    second = next(m for m in window.library.models() if m.version != first.version)
    window.versions_action.trigger()
    dialog = window.last_dialog
    assert isinstance(dialog, VersionsDialog)
    assert dialog.table.rowCount() == 2
    dialog.select_version(second.version)
    with qtbot.waitSignal(window.modelChanged):
        dialog.activate_button.click()
    assert window.library.active_model().version == second.version
    dialog.select_version(first.version)
    with qtbot.waitSignal(window.modelChanged):
        dialog.activate_button.click()
    assert window.library.active_model().version == first.version
    assert first.version in window.model_label.text()


def test_evaluate_shows_metrics_and_plots(window, trained_library_path: Path, qtbot) -> None:
    from fabricsearch.gui.dialogs.evaluate_dialog import EvaluateDialog

    open_library(window, trained_library_path)
    worker = window.training.evaluate()
    dialog = window.last_dialog
    assert isinstance(dialog, EvaluateDialog)
    qtbot.waitUntil(lambda: dialog.result is not None, timeout=60_000)
    assert worker.state == "finished"
    assert 0.0 <= float(dialog.map_label.text()) <= 1.0
    assert dialog.pr_plot.series("precision")
    assert dialog.pk_plot.series("P@k")


def test_about_lists_versions_and_paths(window, library_path: Path) -> None:
    from fabricsearch import logging_setup
    from fabricsearch.gui.dialogs.about_dialog import AboutDialog

    log = logging_setup.setup_logging()
    open_library(window, library_path)
    window.show_about()
    dialog = window.last_dialog
    assert isinstance(dialog, AboutDialog)
    info = dialog.info
    assert info["Library"] == str(library_path.resolve())
    assert info["Log file"] == str(log)
    assert info["fabricsearch"] == __import__("fabricsearch").__version__
    assert info["Qt"].split()[0].count(".") == 2
    assert info["PyTorch"] != "not installed"
    assert info["Device"] == "CPU" or info["Device"].startswith("CUDA")


def test_self_test_entry_point(gui_env, library_path: Path, capsys) -> None:
    from fabricsearch.cli import main

    assert main(["gui", str(library_path), "--self-test"]) == 0
    assert "24 images shown" in capsys.readouterr().out


def test_adapt_from_menu_activates_an_adapted_model(
    window, trained_library_path: Path, qtbot
) -> None:
    from fabricsearch.adapt import AdaptConfig

    open_library(window, trained_library_path)
    before = window.library.active_model().version
    with qtbot.waitSignal(window.trainingEnded, timeout=300_000) as blocker:
        window.training.start_adapt(AdaptConfig(epochs=1, max_steps=2, batch_size=4))
    assert blocker.args == ["finished"]
    after = window.library.active_model()
    assert after.version != before
    assert after.version.startswith("adapted-")
    assert before in {m.version for m in window.library.models()}  # the old one stays


def test_options_allow_label_free_methods_on_an_unlabelled_library(qtbot) -> None:
    from types import SimpleNamespace

    from fabricsearch.config import TrainConfig
    from fabricsearch.gui.dialogs.train_dialog import TrainOptionsDialog

    records = [SimpleNamespace(labelled=False, labelled_at=None) for _ in range(5)]
    dialog = TrainOptionsDialog(records, None, TrainConfig(), None)
    qtbot.addWidget(dialog)
    assert dialog.method_box.currentData() == "dvsh"
    assert not dialog.start_button.isEnabled()
    assert "Label at least two" in dialog.method_note.text()
    dialog.method_box.setCurrentIndex(dialog.method_box.findData("itq"))
    assert dialog.start_button.isEnabled()
    assert "needs no labels" in dialog.method_note.text()
    assert "5" in dialog.info.text()
    assert not dialog.epochs_spin.isEnabled()
    assert dialog.config().method == "itq"
    dialog.method_box.setCurrentIndex(dialog.method_box.findData("dnnh"))
    assert not dialog.start_button.isEnabled()
    assert dialog.epochs_spin.isEnabled()
    assert "0" in dialog.info.text()  # back to the labelled count

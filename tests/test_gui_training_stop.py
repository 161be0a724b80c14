# ruff: noqa: F811 - pytest fixtures imported from test_gui_support are redefined as arguments
"""Training's time estimate follows the library's size and this computer's measured speed, and
a run that stops before its last epoch says when and why (issue 24 item 12)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from test_gui_support import (  # noqa: F401 - fixtures
    fabric_folder,
    gui_env,
    library_path,
    library_template,
    open_library,
    window,
)

from fabricsearch.config import TrainConfig

pytestmark = pytest.mark.gui


def test_estimate_scales_with_the_number_of_labelled_images() -> None:
    from fabricsearch.presets import estimate_seconds, get_preset, training_steps

    quick = get_preset("quick")
    # The reported case: 1,720 labels were "about 20 s", as for 240.
    assert estimate_seconds(quick, 1720) > 3 * estimate_seconds(quick, 240)
    assert estimate_seconds(quick, 20_000) > 8 * estimate_seconds(quick, 1720)
    # Steps: the training split in batches for every epoch, twice when the head is compared.
    assert training_steps(quick, 1720, epochs=30) == 2 * 30 * (int(1720 * 0.7) // 32)
    # A measured speed replaces the development CPU's.
    assert estimate_seconds(quick, 1720, step_s=0.15) == pytest.approx(
        0.15 * training_steps(quick, 1720)
    )


def test_options_dialog_estimates_from_the_measured_speed(qtbot) -> None:
    from fabricsearch.gui.controllers.training import _Labels
    from fabricsearch.gui.dialogs.train_dialog import TrainOptionsDialog

    rows = [_Labels(True, 1.0)] * 1720
    first = TrainOptionsDialog(rows, None, TrainConfig(epochs=30))
    qtbot.addWidget(first)
    assert "(at the last training's speed)" not in first.preset_box.itemText(0)
    asked = []

    def measured(kind: str, gpu: bool) -> float | None:
        asked.append((kind, gpu))
        return 0.15 if kind == "features" else None  # the last run: 335 s for 2,232 steps

    second = TrainOptionsDialog(rows, None, TrainConfig(epochs=30), step_seconds=measured)
    qtbot.addWidget(second)
    text = second.preset_box.itemText(second.preset_box.findData("quick"))
    assert text.startswith("Quick — about 6 min on this computer's CPU (at the last training's")
    assert {kind for kind, _gpu in asked} == {"features", "finetune"}


def test_a_run_stopped_early_says_when_and_why(
    window, library_path: Path, qtbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fabricsearch.config import step_metric
    from fabricsearch.hashing import train as train_mod
    from fabricsearch.services.training import measured_step_seconds

    # The validation mAP falls after the first epoch: patience 1 stops the run at epoch 2.
    scores = iter([0.9, 0.5, 0.4, 0.3, 0.2, 0.1])
    monkeypatch.setattr(train_mod, "_validate", lambda *_a: next(scores))
    open_library(window, library_path)
    n_val = sum(1 for s in window.library.splits().values() if s == "val")
    assert n_val >= 2  # the seeded library has a validation split to stop on
    config = dataclasses.replace(window.training.base_config(), epochs=6, patience=1)
    with qtbot.waitSignal(window.trainingEnded, timeout=120_000) as blocker:
        window.training.start_training(config)
    assert blocker.args == ["finished"]
    dialog = window.train_dialog
    # In the window while it runs on (encoding), and in the final message.
    assert dialog.stop_label.isVisible()
    assert "stopped early at epoch 2 of 6" in dialog.stop_label.text()
    final = dialog.stage_label.text()
    assert final.startswith("Finished: model")
    assert "stopped early at epoch 2 of 6" in final
    assert "validation mAP had not improved in 1 validations" in final
    assert "weights of epoch 1" in final
    # The run's speed is recorded for the next estimate.
    info = window.library.active_model()
    # The window's test config trains the compact network on pixels: a kind of its own, so
    # its speed does not stand for a Quick run's on cached features.
    assert info.metrics[step_metric("pixels", False)] > 0
    assert measured_step_seconds(window.library, "pixels", False) == pytest.approx(
        info.metrics[step_metric("pixels", False)]
    )
    assert measured_step_seconds(window.library, "features", False) is None


def test_a_run_that_did_every_epoch_says_nothing_of_stopping() -> None:
    from fabricsearch.hashing.train import LoopState, describe_stop, stop_record

    done = stop_record(LoopState(epoch=30, best_epoch=28, best_val=0.8), 30, 5)
    assert done["reason"] == "completed"
    assert describe_stop(done) == ""
    early = stop_record(LoopState(epoch=25, best_epoch=20, stopped_early=True), 30, 5)
    assert describe_stop(early).startswith("stopped early at epoch 25 of 30")

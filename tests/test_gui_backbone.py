"""The retrain dialog's image-network choice and fine-tuning option."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from fabricsearch.config import TrainConfig  # noqa: E402
from fabricsearch.hashing.backbones import DEFAULT_BACKBONE, backbone_available  # noqa: E402

pytestmark = [
    pytest.mark.gui,
    pytest.mark.skipif(not backbone_available(DEFAULT_BACKBONE), reason="no pretrained weights"),
]


def _select(box, data) -> None:  # type: ignore[no-untyped-def]
    box.setCurrentIndex(box.findData(data))


def test_retrain_dialog_defaults_to_the_pretrained_network_and_offers_finetuning(qtbot) -> None:  # type: ignore[no-untyped-def]
    from fabricsearch.gui.dialogs.train_dialog import TrainOptionsDialog

    dialog = TrainOptionsDialog([], None, TrainConfig())
    qtbot.addWidget(dialog)
    _select(dialog.method_box, "dvsh")
    cfg = dialog.config()
    assert cfg.backbone == DEFAULT_BACKBONE
    assert cfg.finetune == 0
    assert dialog.finetune_box.isEnabled()
    dialog.finetune_box.setChecked(True)
    assert dialog.config().finetune == 3
    # A method that needs pixels gets the compact network and cannot fine-tune.
    _select(dialog.method_box, "dsah")
    assert dialog.config().backbone == "compact"
    assert not dialog.finetune_box.isEnabled()
    assert dialog.config().finetune == 0
    # The user may still choose the compact network for DVSH.
    _select(dialog.method_box, "dvsh")
    _select(dialog.backbone_box, "compact")
    assert dialog.config().backbone == "compact"

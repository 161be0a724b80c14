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


def test_training_presets_in_plain_words_fill_the_settings(qtbot) -> None:  # type: ignore[no-untyped-def]
    from fabricsearch.gui.dialogs.train_dialog import TrainOptionsDialog
    from fabricsearch.presets import describe, estimate_seconds, get_preset

    dialog = TrainOptionsDialog([], None, TrainConfig(epochs=7))
    qtbot.addWidget(dialog)
    assert dialog.preset_box.currentData() == "quick"
    assert dialog.preset_box.currentText().startswith("Quick — about ")
    assert dialog.config().finetune == 0
    assert dialog.config().epochs == 7  # quick keeps the configured epochs
    _select(dialog.preset_box, "thorough")
    assert "GPU recommended" in dialog.preset_box.currentText()
    cfg = dialog.config()
    assert cfg.finetune == 3
    assert cfg.backbone == DEFAULT_BACKBONE
    assert cfg.epochs == 15
    # Editing a field by hand makes the settings Custom.
    dialog.epochs_spin.setValue(4)
    assert dialog.preset_box.currentData() == "custom"
    assert dialog.config().epochs == 4
    # Estimates grow with the library and shrink on a GPU; fine-tuning costs far more.
    quick, thorough = get_preset("quick"), get_preset("thorough")
    assert estimate_seconds(quick, 5000) > estimate_seconds(quick, 100)
    assert estimate_seconds(thorough, 1000) > 10 * estimate_seconds(quick, 1000)
    assert estimate_seconds(thorough, 1000, gpu=True) < estimate_seconds(thorough, 1000)
    assert "about" in describe(quick, 1000)


def test_a_plain_text_path_on_the_clipboard_is_a_query(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtCore import QMimeData

    from fabricsearch.gui.dropping import can_accept, query_from_mime

    photo = tmp_path / "swatch one.jpg"
    photo.write_bytes(b"not decoded here")
    for text in (str(photo), f'"{photo}"', f"  {photo}\nsecond line"):
        mime = QMimeData()
        mime.setText(text)
        assert can_accept(mime)
        assert query_from_mime(mime).path == photo
    mime = QMimeData()
    mime.setText(str(tmp_path / "missing.jpg"))
    assert query_from_mime(mime).path is None


def test_methods_are_named_in_plain_words(qtbot) -> None:  # type: ignore[no-untyped-def]
    from fabricsearch.gui.dialogs.train_dialog import TrainOptionsDialog

    dialog = TrainOptionsDialog([], None, TrainConfig())
    qtbot.addWidget(dialog)
    box = dialog.method_box
    texts = [box.itemText(i) for i in range(box.count())]
    assert all(" " in t for t in texts)  # never a bare acronym
    assert box.itemText(box.findData("dvsh")).startswith("DVSH — ")


def test_the_query_panel_shows_predicted_labels_as_predictions(qtbot) -> None:  # type: ignore[no-untyped-def]
    import numpy as np
    from PySide6.QtGui import QImage

    from fabricsearch.gui.widgets.detail_panel import DetailPanel
    from fabricsearch.taxonomy import Taxonomy

    panel = DetailPanel()
    qtbot.addWidget(panel)
    panel.taxonomy = Taxonomy.default()
    image = QImage(8, 8, QImage.Format.Format_RGB888)
    palette = np.zeros((10, 4), np.float32)
    predicted = {
        "coarse": "plaid/tartan",
        "coarse_confidence": 0.87,
        "fine": "twill",
        "fine_confidence": 0.4,
    }
    panel.set_query(image, palette, "q.jpg", predicted=predicted)
    assert "(predicted, 87%)" in panel.query.coarse.text()
    assert "(predicted, 40%)" in panel.query.fine.text()
    assert "predicted by the model" in panel.query.extra.text()
    # Labels the user gave win: no prediction shown.
    panel.set_query(image, palette, "q.jpg", coarse="stripe", predicted=predicted)
    assert "predicted" not in panel.query.coarse.text()
    panel.set_query(image, palette, "q.jpg")
    assert panel.query.extra.text() == "colour measured; labels unknown"


def test_retrain_header_counts_every_label_as_new_for_a_label_free_model(qtbot) -> None:  # type: ignore[no-untyped-def]
    import time
    from pathlib import Path

    import numpy as np

    from fabricsearch.catalogue import ImageRecord, ModelInfo
    from fabricsearch.gui.dialogs.train_dialog import TrainOptionsDialog

    palette = np.zeros((10, 4), np.float32)
    records = [
        ImageRecord(
            i,
            Path(f"{i}.jpg"),
            f"{i:064x}",
            1,
            0.0,
            8,
            8,
            0.0,
            palette,
            coarse="plaid/tartan",
            labelled_at=0.0,
        )
        for i in range(3)
    ]  # labelled long before the label-free model was fitted
    auto = ModelInfo(
        "auto-20261201-000000-itq-64",
        "itq",
        64,
        Path("m.safetensors"),
        time.time(),
        kind="automatic",
    )
    dialog = TrainOptionsDialog(records, auto, TrainConfig())
    qtbot.addWidget(dialog)
    assert "No trained model yet" in dialog.labels_text
    assert "<b>3</b> labelled images" in dialog.labels_text

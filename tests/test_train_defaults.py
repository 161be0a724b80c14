"""One default, one place (issue 21 item 7, issue 22's last point): `fabricsearch train`'s
defaults are `TrainConfig`'s, as the window's retrain dialog's are; `--epochs 0` is refused
rather than silently becoming 30; cached training views are off unless asked for."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from fabricsearch.catalogue import Library
from fabricsearch.cli import main as cli_main
from fabricsearch.config import TrainConfig
from fabricsearch.hashing import train as train_mod
from fabricsearch.hashing.backbones import DEFAULT_BACKBONE, backbone_available


class Captured(BaseException):
    """Stops the command once it has its configuration; a BaseException so the CLI's error
    boundary (which reports any Exception as an internal error) lets it through."""


@pytest.fixture
def captured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, list[TrainConfig]]:
    Library.create(tmp_path / "lib").close()
    seen: list[TrainConfig] = []

    def fake_train(lib: Any, cfg: TrainConfig, *args: Any, **kw: Any) -> Any:
        seen.append(cfg)
        raise Captured

    monkeypatch.setattr(train_mod, "train_library", fake_train)
    return str(tmp_path / "lib"), seen


def _cli_config(captured: tuple[str, list[TrainConfig]], *flags: str) -> TrainConfig:
    lib, seen = captured
    with pytest.raises(Captured):
        cli_main(["train", lib, *flags])
    return seen[-1]


def test_cli_defaults_are_the_dataclass_defaults(captured) -> None:  # type: ignore[no-untyped-def]
    cfg = _cli_config(captured)
    base = TrainConfig()
    differs = {
        f.name
        for f in dataclasses.fields(TrainConfig)
        if getattr(cfg, f.name) != getattr(base, f.name)
    }
    # The image network is the method's default pretrained one (`default_backbone_for`),
    # in the CLI and in the window alike; every other field is the dataclass's.
    assert differs <= {"backbone"}
    assert cfg.backbone == DEFAULT_BACKBONE
    assert cfg.feature_views is False  # was True from the CLI: minutes instead of seconds


def test_explicit_flags_win_over_preset_and_defaults(captured) -> None:  # type: ignore[no-untyped-def]
    cfg = _cli_config(captured, "--preset", "thorough", "--epochs", "4", "--views", "--no-amp")
    assert (cfg.epochs, cfg.finetune, cfg.feature_views, cfg.amp) == (4, 3, True, False)
    cfg = _cli_config(captured, "--preset", "thorough", "--finetune", "1", "--lr", "0.01")
    assert (cfg.epochs, cfg.finetune, cfg.lr) == (15, 1, 0.01)


@pytest.mark.parametrize("flags", [["--epochs", "0"], ["--bits", "12"], ["--batch-size", "1"]])
def test_bad_values_are_refused_not_replaced(captured, capsys, flags: list[str]) -> None:  # type: ignore[no-untyped-def]
    lib, seen = captured
    assert cli_main(["train", lib, *flags]) == 1
    assert not seen  # refused before any training
    assert "fabricsearch: error:" in capsys.readouterr().err


@pytest.mark.gui
@pytest.mark.skipif(not backbone_available(DEFAULT_BACKBONE), reason="no pretrained weights")
def test_window_and_cli_share_every_default(captured, qtbot) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("PySide6")
    from fabricsearch.gui.dialogs.train_dialog import TrainOptionsDialog

    dialog = TrainOptionsDialog([], None, TrainConfig())
    qtbot.addWidget(dialog)
    window = dialog.config()
    cli = _cli_config(captured)
    assert dataclasses.asdict(window) == dataclasses.asdict(cli)


def test_presets_and_flags_read_the_numbers_where_they_are_set(captured) -> None:  # type: ignore[no-untyped-def]
    """The fine-tuned blocks, the batch size, the least steps and the split shares that the
    presets and `--finetune` use are the dataclass's and the catalogue's, not copies."""
    from fabricsearch import presets
    from fabricsearch.catalogue.images_store import SPLIT_FRACTIONS
    from fabricsearch.config import CODE_LENGTHS, FINETUNE_BLOCKS

    assert _cli_config(captured, "--finetune").finetune == FINETUNE_BLOCKS
    assert TrainConfig.bits in CODE_LENGTHS  # the default is one a front end offers
    assert presets.get_preset("thorough").changes["finetune"] == FINETUNE_BLOCKS
    assert (
        TrainConfig.batch_size,
        TrainConfig.min_steps,
        TrainConfig.min_val_for_early_stop,
    ) == (presets.BATCH_SIZE, presets.MIN_STEPS, presets.MIN_VAL_FOR_CHOICE)
    assert SPLIT_FRACTIONS[:2] == (presets.TRAIN_SHARE, presets.VAL_SHARE)
    # An epoch count the preset does not set is TrainConfig's.
    quick = presets.get_preset("quick")
    assert presets.training_steps(quick, 10_000) == presets.training_steps(
        quick, 10_000, epochs=TrainConfig.epochs
    )


def test_the_presets_load_no_torch() -> None:
    """A dialog or `--help` listing the presets names the default network from
    `backbone_specs`; `hashing.backbones` would import torch."""
    import subprocess
    import sys

    code = (
        "import sys; from fabricsearch.presets import presets; presets();"
        " print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("command", "config_name", "flags_name"),
    [
        ("train", "TrainConfig", "TRAIN_FLAGS"),
        ("pretrain", "PretrainConfig", "PRETRAIN_FLAGS"),
        ("adapt", "AdaptConfig", "ADAPT_FLAGS"),
    ],
)
def test_every_training_command_takes_its_defaults_from_its_dataclass(
    command: str, config_name: str, flags_name: str
) -> None:
    """A flag's default is None (not given: the dataclass's value is used) and --help shows
    the dataclass's value; pretrain and adapt repeated their numbers before."""
    import argparse

    from fabricsearch import config
    from fabricsearch.cli import build_parser, model_cmd, pretrain_cmd

    flags = getattr(model_cmd if command == "train" else pretrain_cmd, flags_name)
    cls = getattr(config, config_name)
    sub = next(
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    ).choices[command]
    actions = {a.dest: a for a in sub._actions}
    for name in flags:
        default = next(f.default for f in dataclasses.fields(cls) if f.name == name)
        assert actions[name].default is None, name
        shown = ("on" if default else "off") if isinstance(default, bool) else str(default)
        assert f"(default {shown})" in actions[name].help, name

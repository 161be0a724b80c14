"""A setting outside what is allowed is the user's error, one line and exit 1 — not an
"internal error" (exit 70): `errors.ConfigError` for the configuration classes."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabricsearch.catalogue import Library
from fabricsearch.cli import main as cli_main
from fabricsearch.config import TrainConfig
from fabricsearch.errors import ConfigError, UserError


@pytest.mark.parametrize(
    "flags",
    [
        ["adapt", "{lib}", "--bits", "12"],
        ["train", "{lib}", "--option", "tau=nan"],
        ["train", "{lib}", "--option", "hidden_dim=1000000000"],
        ["train", "{lib}", "--input-size", "8"],
    ],
)
def test_a_bad_setting_is_one_line_and_exit_1(tmp_path: Path, capsys, flags: list[str]) -> None:  # type: ignore[no-untyped-def]
    Library.create(tmp_path / "lib").close()
    args = [f.format(lib=tmp_path / "lib") for f in flags]
    assert cli_main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("fabricsearch: error:")
    assert "internal error" not in err


def test_configuration_refusals_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        TrainConfig(bits=12)
    with Library.create(tmp_path / "lib") as lib, pytest.raises(ConfigError, match="tightness"):
        lib.set_labels([], tightness=150.0)
    assert issubclass(ConfigError, ValueError)  # what callers of the config classes catch
    assert issubclass(ConfigError, UserError)

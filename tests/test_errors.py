"""Error boundaries (issue 21 item 8): a `fabricsearch.errors.UserError` is one line for the
user (CLI: exit 1; GUI: its message); anything else is a bug — "internal error", its traceback
in the log, never dressed up as advice."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from fabricsearch import errors, logging_setup
from fabricsearch.catalogue import (
    DamagedCatalogueError,
    DiskFullError,
    Library,
    LibraryError,
    MissingImageError,
    ReadOnlyLibraryError,
)
from fabricsearch.cli import main as cli_main
from fabricsearch.cli.common import INTERNAL_ERROR_EXIT, UserError, run_command
from fabricsearch.errors import message_for


@pytest.fixture
def log_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Logging set up in a folder of the test's own (as `fabricsearch` does at start)."""
    monkeypatch.setenv("FABRICSEARCH_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    return logging_setup.setup_logging()


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


# --- the classes --------------------------------------------------------------------------------


def test_user_errors_share_one_base_and_keep_their_old_bases() -> None:
    from fabricsearch.atomicio import DiskFullError as FileSystemFull
    from fabricsearch.catalogue.labels_csv import LabelsCsvError
    from fabricsearch.catalogue.metadata import MetadataError
    from fabricsearch.catalogue.metadata_csv import MetadataCsvError
    from fabricsearch.catalogue.textsearch import TextQueryError
    from fabricsearch.hashing.backbones import BackboneError
    from fabricsearch.hashing.checkpoint import CheckpointError
    from fabricsearch.hashing.data import TrainingError
    from fabricsearch.hashing.device import DeviceError
    from fabricsearch.hashing.registry import UnknownMethodError
    from fabricsearch.hashing.train import DivergedTrainingError
    from fabricsearch.imaging import ImageError
    from fabricsearch.search import SearchError
    from fabricsearch.suggest import SuggestError
    from fabricsearch.taxonomy import TaxonomyError

    every = {
        LibraryError: (),
        DamagedCatalogueError: (LibraryError,),
        ReadOnlyLibraryError: (LibraryError,),
        DiskFullError: (LibraryError,),
        MissingImageError: (LibraryError, KeyError),
        CheckpointError: (),
        TaxonomyError: (ValueError,),
        LabelsCsvError: (ValueError,),
        MetadataError: (ValueError,),
        MetadataCsvError: (ValueError,),
        TextQueryError: (ValueError,),
        TrainingError: (ValueError,),
        DivergedTrainingError: (TrainingError, ValueError),
        SearchError: (),
        SuggestError: (),
        ImageError: (),
        UnknownMethodError: (KeyError,),
        DeviceError: (RuntimeError,),
        BackboneError: (RuntimeError,),
        FileSystemFull: (OSError,),
    }
    for cls, bases in every.items():
        assert issubclass(cls, errors.UserError), cls
        for base in bases:
            assert issubclass(cls, base), (cls, base)
    assert UserError is errors.UserError  # the CLI's is the same class
    assert str(MissingImageError("no images with ids [3]")) == "no images with ids [3]"


def test_a_missing_image_is_a_user_error(tmp_path: Path) -> None:
    with Library.create(tmp_path / "lib") as lib, pytest.raises(MissingImageError) as caught:
        lib.set_labels([12345], coarse=None)
    assert isinstance(caught.value, KeyError)  # callers catching KeyError still do


# --- the CLI ------------------------------------------------------------------------------------


def test_a_user_error_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["info", str(tmp_path / "no-library")]) == 1
    err = _lines(capsys.readouterr().err)
    assert len(err) == 1
    assert err[0].startswith("fabricsearch: error: ")
    assert "not a fabricsearch library" in err[0]


def _raise(exc: BaseException):  # type: ignore[no-untyped-def]
    def command(args: argparse.Namespace) -> int:
        raise exc

    return command


@pytest.mark.parametrize(
    "bug",
    [
        TypeError("unsupported operand"),
        KeyError("coarse"),
        AttributeError("'NoneType' object has no attribute 'bits'"),
        ValueError("a ValueError that is no UserError"),
    ],
)
def test_a_bug_goes_to_the_log_with_its_traceback(
    bug: Exception,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from fabricsearch.cli import library_cmd

    monkeypatch.setenv("FABRICSEARCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(library_cmd, "run_info", _raise(bug))
    assert cli_main(["info", str(tmp_path)]) == INTERNAL_ERROR_EXIT
    err = _lines(capsys.readouterr().err)
    log = tmp_path / "data" / "fabricsearch.log"
    assert err == [
        f"fabricsearch: an internal error ({type(bug).__name__}); details in the log: {log}"
    ]
    text = log.read_text(encoding="utf-8")
    assert "internal error in fabricsearch info" in text
    assert "Traceback (most recent call last)" in text
    assert f"{type(bug).__name__}: " in text


def test_without_a_log_the_traceback_goes_to_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(errors, "log_location", lambda: None)
    code = run_command(_raise(TypeError("no log here")), argparse.Namespace())
    assert code == INTERNAL_ERROR_EXIT
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert "TypeError: no log here" in err
    assert err.rstrip().endswith(
        "fabricsearch: an internal error (TypeError); the traceback is above"
    )


def test_an_os_error_is_one_line_and_logged(
    log_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = FileNotFoundError(2, "No such file or directory", "/nowhere/photo.jpg")
    assert run_command(_raise(missing), argparse.Namespace()) == 1
    assert _lines(capsys.readouterr().err) == [
        "fabricsearch: error: [Errno 2] No such file or directory: '/nowhere/photo.jpg'"
    ]
    assert "FileNotFoundError" in log_path.read_text(encoding="utf-8")


def _train_args(tmp_path: Path) -> list[str]:
    with Library.create(tmp_path / "lib"):
        pass
    return ["train", str(tmp_path / "lib"), "--method", "itq", "--bits", "16"]


def test_train_no_longer_turns_a_bug_into_advice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fabricsearch.hashing import train as trainmod

    monkeypatch.setenv("FABRICSEARCH_DATA_DIR", str(tmp_path / "data"))
    args = _train_args(tmp_path)
    for bug in (ValueError("operands could not be broadcast"), TypeError("bad call")):

        def broken(*a, exc=bug, **k):  # type: ignore[no-untyped-def]
            raise exc

        monkeypatch.setattr(trainmod, "train_library", broken)
        assert cli_main(args) == INTERNAL_ERROR_EXIT
        err = _lines(capsys.readouterr().err)
        assert len(err) == 1
        assert f"internal error ({type(bug).__name__})" in err[0]
        assert str(bug) in (tmp_path / "data" / "fabricsearch.log").read_text(encoding="utf-8")


def test_train_refusals_stay_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FABRICSEARCH_DATA_DIR", str(tmp_path / "data"))
    args = _train_args(tmp_path)
    # The training's own refusal (an empty library) and a method option it refuses.
    assert cli_main(args) == 1
    err = _lines(capsys.readouterr().err)
    assert err == ["fabricsearch: error: the library needs at least two images to train"]
    assert cli_main([*args[:-4], "--method", "dvsh", "--option", "tau=-1"]) == 1
    err = _lines(capsys.readouterr().err)
    assert len(err) == 1
    assert "tau" in err[0]


# --- the GUI ------------------------------------------------------------------------------------


def test_message_for_splits_user_errors_from_bugs(log_path: Path) -> None:
    assert message_for(LibraryError("the library is busy")) == "the library is busy"
    try:
        {}["coarse"]
    except KeyError as exc:
        shown = message_for(exc, what="labelling")
    assert shown == f"an internal error (KeyError); details in the log: {log_path}"
    text = log_path.read_text(encoding="utf-8")
    assert "internal error in labelling" in text
    assert "Traceback (most recent call last)" in text


def test_gui_worker_shows_user_errors_and_logs_bugs(qtbot, log_path: Path) -> None:
    from fabricsearch.gui.workers import Worker, stop_all_workers

    def refused(progress=None, cancel=None) -> None:
        raise ReadOnlyLibraryError("the library is open read-only: it cannot be changed")

    def bug(progress=None, cancel=None) -> None:
        raise AttributeError("'NoneType' object has no attribute 'bits'")

    try:
        worker = Worker(refused, name="labelling")
        with qtbot.waitSignal(worker.failed, timeout=10_000) as blocker:
            worker.start()
        assert blocker.args == ["the library is open read-only: it cannot be changed"]
        assert "Traceback" not in log_path.read_text(encoding="utf-8")

        worker = Worker(bug, name="training")
        with qtbot.waitSignal(worker.failed, timeout=10_000) as blocker:
            worker.start()
        assert blocker.args == [
            f"an internal error (AttributeError); details in the log: {log_path}"
        ]
        assert worker.error == blocker.args[0]
        text = log_path.read_text(encoding="utf-8")
        assert "internal error in training" in text
        assert "Traceback (most recent call last)" in text
        assert "no attribute 'bits'" in text
    finally:
        assert stop_all_workers(30_000)

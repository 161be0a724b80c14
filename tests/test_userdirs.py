"""Per-user folders come from platformdirs (data, and caches in the user cache folder); the
environment overrides still win, and what an older version left in its folders stays in use
(issue 21)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from fabricsearch import logging_setup


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake home with no overrides: the platform's own folders are used."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in (
        logging_setup.DATA_DIR_ENV,
        logging_setup.CACHE_DIR_ENV,
        "XDG_DATA_HOME",
        "XDG_CACHE_HOME",
        "APPDATA",
        "LOCALAPPDATA",
    ):
        monkeypatch.delenv(name, raising=False)
    return home


def on(platform: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logging_setup.sys, "platform", platform)
    if platform == "win32":  # off Windows, platformdirs reads the folders from the environment
        from platformdirs import windows

        monkeypatch.setattr(windows, "_RESOLVE_WIN_FOLDER", windows.get_win_folder_from_env_vars)


def test_linux_folders_follow_xdg(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    on("linux", monkeypatch)
    assert logging_setup.data_dir() == home / ".local" / "share" / "fabricsearch"
    assert logging_setup.cache_dir() == home / ".cache" / "fabricsearch"
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "xd"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "xc"))
    assert logging_setup.data_dir() == home / "xd" / "fabricsearch"
    assert logging_setup.cache_folder("weights") == home / "xc" / "fabricsearch" / "weights"


def test_windows_data_roams_and_caches_stay_local(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on("win32", monkeypatch)
    monkeypatch.setenv("APPDATA", str(home / "Roaming"))
    monkeypatch.setenv("LOCALAPPDATA", str(home / "Local"))
    assert logging_setup.data_dir() == home / "Roaming" / "fabricsearch"  # as before
    assert logging_setup.cache_dir() == home / "Local" / "fabricsearch" / "Cache"


def test_macos_folders(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    on("darwin", monkeypatch)
    support = home / "Library" / "Application Support" / "fabricsearch"
    assert logging_setup.data_dir() == support
    assert logging_setup.cache_dir() == home / "Library" / "Caches" / "fabricsearch"


def test_macos_old_data_folder_stays_in_use(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # platformdirs honours $XDG_DATA_HOME on macOS; earlier versions did not: their folder wins.
    on("darwin", monkeypatch)
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "xd"))
    assert logging_setup.data_dir() == home / "xd" / "fabricsearch"  # nothing older there
    (home / "xd" / "fabricsearch").rmdir()
    old = home / "Library" / "Application Support" / "fabricsearch"
    (old / "demo-library").mkdir(parents=True)
    assert logging_setup.data_dir() == old
    assert not (home / "xd" / "fabricsearch").exists()


def test_overrides_win(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    on("linux", monkeypatch)
    monkeypatch.setenv(logging_setup.DATA_DIR_ENV, str(home / "data"))
    assert logging_setup.data_dir() == home / "data"
    assert logging_setup.cache_dir() == home / "data"  # the one folder given holds all
    monkeypatch.setenv(logging_setup.CACHE_DIR_ENV, str(home / "cache"))
    assert logging_setup.cache_folder("libraries") == home / "cache" / "libraries"
    assert not (home / ".cache").exists()
    assert not (home / ".local").exists()


def test_old_caches_move_to_the_cache_folder(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    on("linux", monkeypatch)
    data = home / ".local" / "share" / "fabricsearch"
    (data / "weights").mkdir(parents=True)
    (data / "weights" / "w.safetensors").write_bytes(b"weights")
    (data / "cache" / "lib-0123").mkdir(parents=True)
    weights = logging_setup.cache_folder("weights")
    assert weights == home / ".cache" / "fabricsearch" / "weights"
    assert (weights / "w.safetensors").read_bytes() == b"weights"
    assert not (data / "weights").exists()
    libraries = logging_setup.cache_folder("libraries")
    assert (libraries / "lib-0123").is_dir()
    assert not (data / "cache").exists()
    (data / "weights").mkdir()  # an older version running beside makes it again: not adopted
    assert logging_setup.cache_folder("weights") == weights


def test_old_cache_that_cannot_move_is_used_where_it_is(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on("linux", monkeypatch)
    old = home / ".local" / "share" / "fabricsearch" / "weights"
    old.mkdir(parents=True)

    def cross_device(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

    monkeypatch.setattr(logging_setup.os, "rename", cross_device)
    assert logging_setup.cache_folder("weights") == old


def test_read_only_library_caches_in_the_user_cache_folder(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fabricsearch.catalogue.library import _client_cache

    on("linux", monkeypatch)
    monkeypatch.setenv(logging_setup.CACHE_DIR_ENV, str(tmp_path / "cache"))
    path = _client_cache(tmp_path / "shared-lib")
    assert path.parent == tmp_path / "cache" / "libraries"
    assert path.name.startswith("shared-lib-")


def test_weights_are_a_cache(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fabricsearch.hashing import backbones

    on("linux", monkeypatch)
    monkeypatch.delenv("FABRICSEARCH_WEIGHTS_DIR", raising=False)
    assert backbones.weights_dir() == home / ".cache" / "fabricsearch" / "weights"
    monkeypatch.setenv("FABRICSEARCH_WEIGHTS_DIR", str(home / "w"))
    assert backbones.weights_dir() == home / "w"

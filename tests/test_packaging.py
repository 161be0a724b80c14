"""Packaging: the PyInstaller spec, the Linux desktop entry and the icons are well-formed, and
(slow, opt-in) the built bundle passes its self-test."""

from __future__ import annotations

import ast
import io
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
ICONS = ROOT / "fabricsearch" / "resources" / "icons"
ICON_SIZES = (32, 64, 128, 256)

# Keys of the freedesktop Desktop Entry Specification 1.5 (the ones a Type=Application may use).
DESKTOP_KEYS = {
    "Type",
    "Version",
    "Name",
    "GenericName",
    "NoDisplay",
    "Comment",
    "Icon",
    "Hidden",
    "OnlyShowIn",
    "NotShowIn",
    "DBusActivatable",
    "TryExec",
    "Exec",
    "Path",
    "Terminal",
    "Actions",
    "MimeType",
    "Categories",
    "Implements",
    "Keywords",
    "StartupNotify",
    "StartupWMClass",
    "URL",
    "PrefersNonDefaultGPU",
    "SingleMainWindow",
}
# Main categories of the freedesktop menu specification; an entry needs at least one.
MAIN_CATEGORIES = {
    "AudioVideo",
    "Audio",
    "Video",
    "Development",
    "Education",
    "Game",
    "Graphics",
    "Network",
    "Office",
    "Science",
    "Settings",
    "System",
    "Utility",
}


def parse_desktop_entry(text: str) -> dict[str, str]:
    """Parse the [Desktop Entry] group; raise ValueError on anything the spec does not allow."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if not lines or lines[0] != "[Desktop Entry]":
        raise ValueError("the first group must be [Desktop Entry]")
    entry: dict[str, str] = {}
    for ln in lines[1:]:
        if ln.startswith("["):
            break  # a following group (e.g. [Desktop Action ...]) ends the main one
        if "=" not in ln:
            raise ValueError(f"not a key=value line: {ln!r}")
        key, value = ln.split("=", 1)
        if key != key.strip() or key.split("[", 1)[0] not in DESKTOP_KEYS:
            raise ValueError(f"unknown key {key!r}")
        if key in entry:
            raise ValueError(f"duplicate key {key!r}")
        entry[key] = value
    return entry


def test_desktop_entry_is_valid() -> None:
    entry = parse_desktop_entry((PACKAGING / "fabricsearch.desktop").read_text(encoding="utf-8"))
    for key in ("Type", "Name", "Exec", "Icon"):
        assert entry.get(key), f"missing {key}"
    assert entry["Type"] == "Application"
    assert entry["Terminal"] in ("true", "false")
    exec_args = entry["Exec"].split()
    assert exec_args[0] == "fabricsearch"  # install-linux-desktop.sh rewrites this word
    # `gui` takes a library folder, not a photo: a file field code would pass a photo to it.
    assert not any(a in ("%f", "%F", "%u", "%U") for a in exec_args)
    assert "MimeType" not in entry  # a MIME handler without a file field code would drop the file
    # Icon is a theme name (installed into hicolor by the script), so no path and no extension.
    assert "/" not in entry["Icon"]
    assert "." not in entry["Icon"]
    categories = [c for c in entry["Categories"].split(";") if c]
    assert entry["Categories"].endswith(";")
    assert MAIN_CATEGORIES & set(categories)
    assert entry["Keywords"].endswith(";")


def test_desktop_entry_parser_rejects_bad_entries() -> None:
    with pytest.raises(ValueError, match="unknown key"):
        parse_desktop_entry("[Desktop Entry]\nType=Application\nCommand=x\n")
    with pytest.raises(ValueError, match="first group"):
        parse_desktop_entry("Type=Application\n")
    with pytest.raises(ValueError, match="duplicate"):
        parse_desktop_entry("[Desktop Entry]\nName=a\nName=b\n")
    assert parse_desktop_entry("[Desktop Entry]\nName[de]=Stoff\nName=x\n")["Name[de]"] == "Stoff"


@pytest.mark.parametrize("size", ICON_SIZES)
def test_png_icons_are_square_rgba(size: int) -> None:
    with Image.open(ICONS / f"fabricsearch-{size}.png") as im:
        assert im.format == "PNG"
        assert im.size == (size, size)
        assert im.mode == "RGBA"
        alpha = im.getchannel("A")
        # A rounded icon: transparent corners, opaque centre.
        assert alpha.getpixel((0, 0)) < 128
        assert alpha.getpixel((size // 2, size // 2)) > 128


def test_svg_icon_is_well_formed() -> None:
    import xml.etree.ElementTree as ET

    root = ET.parse(ICONS / "fabricsearch.svg").getroot()
    assert root.tag.endswith("svg")
    assert root.get("viewBox") == "0 0 256 256"


@pytest.mark.parametrize("fmt", ["ICO", "ICNS"])
def test_icon_converts_for_windows_and_macos(fmt: str) -> None:
    """PyInstaller turns the PNG into .ico (Windows) / .icns (macOS) with Pillow at build time;
    check that this conversion works and keeps the sizes the platforms ask for."""
    buf = io.BytesIO()
    with Image.open(ICONS / "fabricsearch-256.png") as im:
        if fmt == "ICO":
            im.save(buf, format="ICO", sizes=[(s, s) for s in (16, 32, 48, 256)])
        else:
            im.save(buf, format="ICNS")
    buf.seek(0)
    with Image.open(buf) as back:
        assert back.format == fmt
        if fmt == "ICO":
            assert {(16, 16), (32, 32), (48, 48), (256, 256)} <= set(back.info["sizes"])
        else:
            assert back.size[0] >= 256


def test_spec_is_python_and_names_the_entry_and_resources() -> None:
    text = (PACKAGING / "fabricsearch.spec").read_text(encoding="utf-8")
    tree = ast.parse(text)  # a syntax error would only show in a 20-minute build
    calls = {
        n.func.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }
    assert {"Analysis", "PYZ", "EXE", "COLLECT"} <= calls
    assert (PACKAGING / "entry.py").is_file()
    assert '"entry.py"' in text
    assert 'collect_data_files("fabricsearch.resources")' in text
    # The licences of what the bundle ships travel with it (LGPL-3.0 and MPL-2.0 notices).
    assert '"THIRD_PARTY_NOTICES.md"' in text
    notices = (ROOT / "THIRD_PARTY_NOTICES.md").read_text(encoding="utf-8")
    for name in ("PySide6", "shiboken6", "psycopg", "tqdm", "LGPL-3.0", "MPL-2.0"):
        assert name in notices
    assert "freeze_support()" in (PACKAGING / "entry.py").read_text(encoding="utf-8")
    # Every CLI command group must be importable in the frozen app: they are found by name.
    from fabricsearch.cli import COMMAND_MODULES

    for name in COMMAND_MODULES:
        rel = Path(*name.split(".")).with_suffix(".py")
        assert (ROOT / rel).is_file(), f"{name} listed but missing"


def test_scripts_are_executable_bash() -> None:
    for name in ("build.sh", "check_bundle.sh", "install-linux-desktop.sh"):
        path = PACKAGING / name
        assert os.access(path, os.X_OK), f"{name} is not executable"
        assert path.read_text(encoding="utf-8").startswith("#!/usr/bin/env bash\n")
        if shutil.which("bash"):
            subprocess.run(["bash", "-n", str(path)], check=True)  # syntax only


@pytest.mark.skipif(sys.platform != "linux", reason="installs a freedesktop entry")
def test_install_linux_desktop_writes_entry_and_icons(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path)}
    subprocess.run(["bash", str(PACKAGING / "install-linux-desktop.sh")], check=True, env=env)
    entry = parse_desktop_entry(
        (tmp_path / "applications" / "fabricsearch.desktop").read_text(encoding="utf-8")
    )
    assert entry["Exec"].startswith('"')
    exe, *rest = shlex.split(entry["Exec"])
    assert Path(exe).is_absolute()
    assert Path(exe).name == "fabricsearch"
    assert rest == ["gui"]
    for s in ICON_SIZES:
        assert (tmp_path / "icons" / "hicolor" / f"{s}x{s}" / "apps" / "fabricsearch.png").is_file()


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("FABRICSEARCH_BUNDLE_TEST") != "1",
    reason="set FABRICSEARCH_BUNDLE_TEST=1 after packaging/build.sh to check the bundle",
)
def test_built_bundle_passes_self_test() -> None:
    proc = subprocess.run(
        ["bash", str(PACKAGING / "check_bundle.sh")],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "bundle self-test passed" in proc.stdout

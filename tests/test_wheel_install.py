"""A plain wheel install carries what the app ships: the wheel is built from the source tree,
installed (no dependencies) into a fresh folder and used from a process that cannot see the
repository: it creates a library (the default taxonomy), and finds and installs the shipped
model. Before the resources were package data, `Taxonomy.default()` raised FileNotFoundError."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PROBE = r"""
import json, sys
from pathlib import Path

import fabricsearch
from fabricsearch.catalogue import Library
from fabricsearch.hashing import checkpoint
from fabricsearch.pretrain import install_default_model, shipped_model_path
from fabricsearch.resources import resource_path
from fabricsearch.taxonomy import Taxonomy

lib = Library.create(Path(sys.argv[1]))
try:
    model = install_default_model(lib)
    out = {
        "package": fabricsearch.__file__,
        "taxonomy_file": str(resource_path("taxonomy.json")),
        "majors": Taxonomy.default().majors,
        "library_majors": lib.taxonomy.majors,
        "model_file": str(shipped_model_path()),
        "bits": checkpoint.read_metadata(shipped_model_path()).bits,
        "installed": model.version if model is not None else None,
        "icons": sorted(p.name for p in resource_path("icons").iterdir()),
        "path": sys.path,
    }
finally:
    lib.close()
print(json.dumps(out))
"""


def _pip(*args: str, cwd: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.slow
def test_installed_wheel_has_taxonomy_and_shipped_model(tmp_path: Path) -> None:
    # Build from a copy of what the wheel is made of, so the build writes nothing into the
    # checkout (build/, egg-info) that others use.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "fabricsearch",
        src / "fabricsearch",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    wheels = tmp_path / "wheels"
    _pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), ".", cwd=src)
    (wheel,) = wheels.glob("fabricsearch-*.whl")
    target = tmp_path / "target"
    _pip("install", "--no-deps", "--target", str(target), str(wheel), cwd=tmp_path)
    assert (target / "fabricsearch" / "resources" / "taxonomy.json").is_file()

    # -S: the venv's site-packages are on PYTHONPATH for the dependencies, but its .pth files
    # (the editable install, which points at the checkout) are not read.
    site_packages = sysconfig.get_paths()["purelib"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = os.pathsep.join([str(target), site_packages])
    env["FABRICSEARCH_DATA_DIR"] = str(tmp_path / "data")
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    proc = subprocess.run(
        [sys.executable, "-S", "-c", PROBE, str(tmp_path / "lib")],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(out["package"]).is_relative_to(target)
    assert not any(p and Path(p).resolve() == ROOT for p in out["path"])
    assert Path(out["taxonomy_file"]).is_relative_to(target)
    assert out["majors"] == ["solid", "stripe", "plaid", "pattern"]
    assert out["library_majors"] == out["majors"]
    assert Path(out["model_file"]).is_relative_to(target)
    assert out["bits"] == 64
    assert out["installed"] == "pretrained-dvsh-64"
    assert "fabricsearch-256.png" in out["icons"]

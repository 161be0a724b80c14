"""Model files: weights in safetensors + JSON metadata beside them. Nothing is ever unpickled.

    <stem>.safetensors   tensors only; the metadata JSON is also embedded in its header
    <stem>.json          the same metadata, human-readable (method, bits, configs, taxonomy
                         version, training-set fingerprint, metrics, time, fabricsearch version)

A file that is not safetensors (e.g. a pickled ``.pt``), or whose metadata does not name a
fabricsearch model of a registered method, is refused with `CheckpointError` before any
tensor is read. Resume state (``*.partial.pt``) is loaded with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from fabricsearch.atomicio import atomic_write, write_text_atomic
from fabricsearch.config import config_from_dict, config_to_dict
from fabricsearch.hashing.base import HashMethod

FORMAT = "fabricsearch-model"
FORMAT_VERSION = 1
_META_KEY = "fabricsearch"
_MAX_HEADER = 100 * 1024 * 1024


class CheckpointError(Exception):
    """A model file that cannot be used, with a message for the user."""


@dataclass
class CheckpointMeta:
    method: str
    bits: int
    method_config: dict[str, Any]
    train_config: dict[str, Any] = field(default_factory=dict)
    taxonomy_version: int | None = None
    training_fingerprint: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    fabricsearch_version: str = ""
    version: str = ""  # model version id in a library
    base_prefix: str = ""  # state-dict prefix of the BaseNet inside the method
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": FORMAT_VERSION, **self.__dict__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckpointMeta:
        if data.get("format") != FORMAT:
            raise CheckpointError("not a fabricsearch model (metadata does not say so)")
        if int(data.get("format_version", 0)) > FORMAT_VERSION:
            raise CheckpointError(
                f"model file format {data.get('format_version')} is newer than this program supports"
            )
        try:
            return cls(
                method=str(data["method"]),
                bits=int(data["bits"]),
                method_config=dict(data["method_config"]),
                train_config=dict(data.get("train_config") or {}),
                taxonomy_version=data.get("taxonomy_version"),
                training_fingerprint=str(data.get("training_fingerprint", "")),
                metrics={k: float(v) for k, v in (data.get("metrics") or {}).items()},
                created=float(data.get("created", 0.0)),
                fabricsearch_version=str(data.get("fabricsearch_version", "")),
                version=str(data.get("version", "")),
                base_prefix=str(data.get("base_prefix", "")),
                extra=dict(data.get("extra") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"model metadata is incomplete: {exc}") from exc


def metadata_path(weights_path: str | Path) -> Path:
    return Path(weights_path).with_suffix(".json")


def base_prefix_of(method: HashMethod) -> str:
    """State-dict prefix of the method's BaseNet ("base." for DVSH), or "" if it has none."""
    base = method.base_network()
    if base is None:
        return ""
    for name, module in method.named_modules():
        if module is base:
            return f"{name}." if name else ""
    return ""


def build_metadata(method: HashMethod, **kwargs: Any) -> CheckpointMeta:
    from fabricsearch import __version__

    return CheckpointMeta(
        method=method.name,
        bits=method.bits,
        method_config=config_to_dict(method.config),
        fabricsearch_version=__version__,
        base_prefix=base_prefix_of(method),
        extra=method.extra_metadata(),
        **kwargs,
    )


def save_checkpoint(path: str | Path, method: HashMethod, meta: CheckpointMeta) -> Path:
    """Write weights (safetensors, atomically) and the JSON metadata beside them."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta_json = json.dumps(meta.to_dict(), indent=2, default=str)
    state = {k: v.detach().to("cpu").contiguous() for k, v in method.state_dict().items()}
    # Temp file + rename, removed on failure (a full disk must not stay full of our temp
    # files); safetensors writes 0600, models are shared like any document.
    atomic_write(
        path, lambda tmp: save_file(state, str(tmp), metadata={_META_KEY: meta_json}), mode=0o644
    )
    write_text_atomic(metadata_path(path), meta_json + "\n")
    return path


def _read_safetensors_header(path: Path) -> dict[str, Any]:
    """Validate the safetensors framing without touching any tensor (or any pickle)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise CheckpointError(f"{path.name} is not a model file (too short)")
            (n,) = struct.unpack("<Q", head)
            if n < 2 or n > min(size - 8, _MAX_HEADER):
                raise CheckpointError(
                    f"{path.name} is not a fabricsearch model file (not safetensors; "
                    "pickled PyTorch files are refused for safety)"
                )
            raw = f.read(n)
    except OSError as exc:
        raise CheckpointError(f"cannot read model file {path}: {exc}") from exc
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(
            f"{path.name} is not a valid safetensors file (corrupt header)"
        ) from exc
    if not isinstance(header, dict):
        raise CheckpointError(f"{path.name} is not a valid safetensors file")
    return header


def read_metadata(path: str | Path) -> CheckpointMeta:
    """Metadata of a model file (from the side JSON, else from the safetensors header)."""
    path = Path(path)
    header = _read_safetensors_header(path)
    side = metadata_path(path)
    data: Any = None
    if side.exists():
        try:
            data = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"model metadata {side.name} is corrupt: {exc}") from exc
    else:
        embedded = (header.get("__metadata__") or {}).get(_META_KEY)
        if embedded is None:
            raise CheckpointError(f"{path.name} is not a fabricsearch model (no metadata)")
        data = json.loads(embedded)
    if not isinstance(data, dict):
        raise CheckpointError(f"{path.name}: metadata is not an object")
    return CheckpointMeta.from_dict(data)


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors model file (validated framing, no pickle)."""
    return _load_tensors(Path(path))


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    _read_safetensors_header(path)
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path.name} is corrupt: {exc}") from exc


def load_checkpoint(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[HashMethod, CheckpointMeta]:
    """Rebuild the method from its metadata and load its weights; the method is in eval mode."""
    from fabricsearch.hashing.registry import UnknownMethodError, create_method, method_config_class

    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"model file {path} does not exist")
    meta = read_metadata(path)
    try:
        cfg = config_from_dict(method_config_class(meta.method), meta.method_config)
        method = create_method(meta.method, config=cfg)
    except UnknownMethodError as exc:
        raise CheckpointError(f"model uses unknown method {meta.method!r}") from exc
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"model configuration is not valid: {exc}") from exc
    state = _load_tensors(path)
    try:
        method.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"model weights do not fit method {meta.method!r}: {exc}") from exc
    method.to(device).eval()
    return method, meta


def load_base_weights(base: torch.nn.Module, path: str | Path) -> None:
    """Initialise a BaseNet from a safetensors file of BaseNet weights or a full checkpoint."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"init weights {path} do not exist")
    state = _load_tensors(path)
    want = set(base.state_dict())
    prefix = ""
    if not want <= set(state):
        try:
            prefix = read_metadata(path).base_prefix
        except CheckpointError:
            prefix = "base."
        state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    try:
        base.load_state_dict({k: state[k] for k in want if k in state}, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path.name} does not hold weights for this base network: {exc}"
        ) from exc


def save_partial(path: str | Path, state: dict[str, Any]) -> None:
    """Resume state (tensors, numbers, strings only) written atomically."""
    atomic_write(Path(path), lambda tmp: torch.save(state, tmp))


def load_partial(path: str | Path) -> dict[str, Any]:
    """Load resume state with ``weights_only=True`` (no arbitrary objects)."""
    try:
        return torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors surface as several types
        raise CheckpointError(f"cannot resume from {Path(path).name}: {exc}") from exc

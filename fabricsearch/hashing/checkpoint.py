"""Model files: weights in safetensors + JSON metadata beside them. Nothing is ever unpickled.

    <stem>.safetensors   tensors only; the metadata JSON is also embedded in its header
    <stem>.json          the same metadata, human-readable (method, bits, configs, taxonomy
                         version, training-set fingerprint, metrics, time, fabricsearch version)

A file that is not safetensors (e.g. a pickled ``.pt``), or whose metadata does not name a
fabricsearch model of a registered method, is refused with `CheckpointError` before any
tensor is read. Resume state (``*.partial.pt``) is loaded with ``torch.load(weights_only=True)``.

A model file may come from anyone, so nothing in it is trusted before it is checked: only
regular files are read (a FIFO or device, also behind a link, is refused without blocking);
the header's tensor sizes must add up within the file; every field of the method configuration
must be of its type and within the method's bounds (`base.check_config_fields`); the network
the configuration describes is first sized on PyTorch's "meta" device (no memory) and must
match the file's tensors name for name and shape for shape before it is built; and weights
that are not finite (NaN, infinity) are refused.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import torch

from fabricsearch import safeio
from fabricsearch.atomicio import atomic_write, write_text_atomic
from fabricsearch.config import config_from_dict, config_to_dict
from fabricsearch.errors import UserError
from fabricsearch.hashing.base import HashMethod
from fabricsearch.modelfiles import metadata_path  # noqa: F401 - part of this module's API

FORMAT = "fabricsearch-model"
FORMAT_VERSION = 1
_META_KEY = "fabricsearch"
_MAX_HEADER = 100 * 1024 * 1024
_MAX_SIDE_JSON = 16 * 1024 * 1024
#: Bytes per element of the safetensors dtypes.
_DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1,
    "U16": 2, "I16": 2, "F16": 2, "BF16": 2,
    "U32": 4, "I32": 4, "F32": 4,
    "U64": 8, "I64": 8, "F64": 8,
}  # fmt: skip

log = logging.getLogger(__name__)


class CheckpointError(UserError):
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
        version = data.get("format_version", 0)
        if isinstance(version, str) and version.isdigit():
            version = int(version)
        if isinstance(version, bool) or not isinstance(version, int):
            raise CheckpointError(f"model file format version {version!r:.40} is not understood")
        if version > FORMAT_VERSION:
            raise CheckpointError(
                f"model file format {version} is newer than this program supports"
            )
        try:
            taxonomy_version = data.get("taxonomy_version")
            return cls(
                method=str(data["method"]),
                bits=int(data["bits"]),
                method_config=_object(data["method_config"], "method_config"),
                train_config=_object(data.get("train_config") or {}, "train_config"),
                taxonomy_version=None if taxonomy_version is None else int(taxonomy_version),
                training_fingerprint=str(data.get("training_fingerprint", "")),
                metrics={k: float(v) for k, v in (data.get("metrics") or {}).items()},
                created=float(data.get("created", 0.0)),
                fabricsearch_version=str(data.get("fabricsearch_version", "")),
                version=str(data.get("version", "")),
                base_prefix=str(data.get("base_prefix", "")),
                extra=_object(data.get("extra") or {}, "extra"),
            )
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise CheckpointError(f"model metadata is incomplete or malformed: {exc}") from exc


def _object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"{name} is not an object")
    return dict(value)


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


def _open_regular(path: Path, what: str) -> BinaryIO:
    """`path` opened for reading if it is a regular file. A FIFO, device or folder (also
    behind a symbolic link) is refused without being opened for long
    (`safeio.open_regular_file`)."""
    try:
        return safeio.open_regular_file(path)
    except safeio.NotRegularFileError as exc:
        raise CheckpointError(f"{what} {path} is not a regular file") from exc
    except OSError as exc:
        raise CheckpointError(f"cannot read {what} {path}: {exc}") from exc


def _read_header(f: BinaryIO, path: Path) -> dict[str, Any]:
    """The safetensors header of the open file `f`, its framing and tensor table validated
    without touching any tensor (or any pickle)."""
    size = os.fstat(f.fileno()).st_size
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
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CheckpointError(
            f"{path.name} is not a valid safetensors file (corrupt header)"
        ) from exc
    if not isinstance(header, dict):
        raise CheckpointError(f"{path.name} is not a valid safetensors file")
    _check_tensor_table(header, size - 8 - n, path)
    return header


def _check_tensor_table(header: dict[str, Any], data_size: int, path: Path) -> None:
    """Every tensor's dtype is known and its shape fits its byte range inside the file: what
    a header claims can never ask for more memory than the file holds."""
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            shape, (begin, end) = entry["shape"], entry["data_offsets"]
            item = _DTYPE_BYTES[entry["dtype"]]
            ints = [*shape, begin, end]
            if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in ints):
                raise ValueError
            numel = 1
            for d in shape:
                numel *= d
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(
                f"{path.name} is not a valid safetensors file (tensor {name!r:.60} is malformed)"
            ) from None
        if not begin <= end <= data_size or end - begin != numel * item:
            raise CheckpointError(
                f"{path.name} is damaged (tensor {name!r:.60} does not fit in the file)"
            )


def _read_safetensors_header(path: Path) -> dict[str, Any]:
    """Validate the safetensors framing without touching any tensor (or any pickle)."""
    with _open_regular(path, "model file") as f:
        try:
            return _read_header(f, path)
        except OSError as exc:
            raise CheckpointError(f"cannot read model file {path}: {exc}") from exc


def _parse_metadata(raw: bytes | str, where: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, TypeError) as exc:
        raise CheckpointError(f"model metadata in {where} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"model metadata in {where} is not an object")
    return data


def read_metadata(path: str | Path) -> CheckpointMeta:
    """Metadata of a model file (from the side JSON, else from the safetensors header)."""
    return _read_metadata(Path(path))[0]


def _read_metadata(path: Path) -> tuple[CheckpointMeta, dict[str, Any]]:
    """(metadata, safetensors header) of a model file."""
    header = _read_safetensors_header(path)
    side = metadata_path(path)
    if side.exists():
        with _open_regular(side, "model metadata") as f:
            try:
                raw = f.read(_MAX_SIDE_JSON + 1)
            except OSError as exc:
                raise CheckpointError(f"model metadata {side.name} is corrupt: {exc}") from exc
        if len(raw) > _MAX_SIDE_JSON:
            raise CheckpointError(f"model metadata {side.name} is too large")
        data = _parse_metadata(raw, side.name)
    else:
        block = header.get("__metadata__")
        embedded = block.get(_META_KEY) if isinstance(block, dict) else None
        if embedded is None:
            raise CheckpointError(f"{path.name} is not a fabricsearch model (no metadata)")
        data = _parse_metadata(embedded, path.name)
    return CheckpointMeta.from_dict(data), header


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors model file (validated framing, no pickle, all finite)."""
    return _load_tensors(Path(path))


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load

    with _open_regular(path, "model file") as f:
        try:
            _read_header(f, path)
            f.seek(0)
            data = f.read()
        except OSError as exc:
            raise CheckpointError(f"cannot read model file {path}: {exc}") from exc
    try:
        state = load(data)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path.name} is corrupt: {exc}") from exc
    bad = non_finite_tensors(state)
    if bad:
        raise CheckpointError(
            f"{path.name} is damaged: weights are not finite (NaN or infinity) in {bad[0]}"
        )
    return state


def non_finite_tensors(state: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors of ``state`` holding a NaN or an infinity: a model
    with any is refused when loaded, and never published by a training."""
    return [
        name
        for name, t in state.items()
        if t.is_floating_point() and not bool(torch.isfinite(t).all())
    ]


#: In-place methods that change a tensor's shape or its flags: still run on meta tensors.
_RESHAPING_IN_PLACE = frozenset(
    {
        "resize_",
        "resize_as_",
        "set_",
        "squeeze_",
        "unsqueeze_",
        "t_",
        "transpose_",
        "swapdims_",
        "swapaxes_",
        "as_strided_",
        "requires_grad_",
    }
)


class _SkipMetaInit(torch.overrides.TorchFunctionMode):
    """Inside ``torch.device("meta")``: in-place tensor methods (``normal_``, ``zero_``:
    weight initialisation) do nothing, and random tensors (``randn``, ``rand``) and ``eye`` are
    empty.

    On meta tensors these run torch's Python reference kernels, whose first use imports
    ``torch._dynamo``: 1.5 s of the loading thread, in bursts that hold the interpreter lock,
    paid by the first search or label suggestion of each process while the window waited
    0.15-0.3 s at a time. Sizing needs shapes, not values. A mode is per thread: a training
    in another thread still initialises its own weights. (The constructors of DNNH and TSN still
    compute on tensors, which imports it: research methods, rarely a library's.)"""

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        kwargs = kwargs or {}
        if func in (torch.randn, torch.rand):
            keep = {k: v for k, v in kwargs.items() if k in ("size", "dtype", "requires_grad")}
            return torch.empty(*args, **keep)
        if func is torch.eye and args:
            keep = {k: v for k, v in kwargs.items() if k in ("dtype", "requires_grad")}
            return torch.empty(args[0], args[1] if len(args) > 1 else args[0], **keep)
        name = getattr(func, "__name__", "")
        if name.endswith("_") and not name.endswith("__") and name not in _RESHAPING_IN_PLACE:
            # nn.init's functions pass their tensor by keyword.
            target = args[0] if args else kwargs.get("tensor")
            if isinstance(target, torch.Tensor) and target.is_meta:
                return target
        return func(*args, **kwargs)


def _check_fits_file(meta: CheckpointMeta, cfg: Any, header: dict[str, Any], path: Path) -> None:
    """Size the network `cfg` describes on the meta device (no memory) and compare its state
    dict with the file's tensor table, so a configuration that asks for more than the file
    holds is refused before anything is allocated."""
    from fabricsearch.hashing.backbones import is_pretrained
    from fabricsearch.hashing.registry import create_method

    if cfg.finetune_blocks and is_pretrained(cfg.backbone):
        return  # the backbone's own weights are loaded while building: sized by the real build
    try:
        with torch.device("meta"), _SkipMetaInit():
            skeleton = create_method(meta.method, config=cfg)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"model configuration is not valid: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - a network that cannot be sized without memory
        log.debug("cannot size %s on the meta device (%s); the real build checks it", path, exc)
        return
    want = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    have = {k: tuple(e["shape"]) for k, e in header.items() if k != "__metadata__"}
    if want == have:
        return
    problems = []
    if missing := sorted(want.keys() - have.keys()):
        problems.append(f"{len(missing)} tensors missing (e.g. {missing[0]})")
    if unexpected := sorted(have.keys() - want.keys()):
        problems.append(
            f"{len(unexpected)} tensors the method does not have (e.g. {unexpected[0]!r:.60})"
        )
    if wrong := sorted(k for k in want.keys() & have.keys() if want[k] != have[k]):
        k = wrong[0]
        problems.append(
            f"{len(wrong)} tensors of another shape (e.g. {k}: {list(have[k])} in the file, "
            f"{list(want[k])} for its configuration)"
        )
    raise CheckpointError(f"model weights do not fit method {meta.method!r}: {'; '.join(problems)}")


def load_checkpoint(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[HashMethod, CheckpointMeta]:
    """Rebuild the method from its metadata and load its weights; the method is in eval mode.
    Everything in the file is checked before it is used (see the module docstring)."""
    from fabricsearch.hashing.registry import UnknownMethodError, create_method, method_config_class

    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"model file {path} does not exist")
    meta, header = _read_metadata(path)
    try:
        # The Config checks every field's type and bounds (base.check_config_fields).
        cfg = config_from_dict(method_config_class(meta.method), meta.method_config)
    except UnknownMethodError as exc:
        raise CheckpointError(f"model uses unknown method {meta.method!r}") from exc
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"model configuration is not valid: {exc}") from exc
    _check_fits_file(meta, cfg, header, path)
    try:
        method = create_method(meta.method, config=cfg)
    except (TypeError, ValueError, RuntimeError) as exc:
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

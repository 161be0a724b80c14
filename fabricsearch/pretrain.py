"""Synthetic pretraining of the DVSH network, and the shipped default model.

No pretrained weights can be downloaded, and a new library has no labels, so fabricsearch
ships a DVSH model pretrained on an endless stream of procedurally generated fabrics
(`fabricsearch.synth`), made on the fly. Each step draws `batch_fabrics` new fabrics with
`photos_per_fabric` photos each and minimises (see docs/pretraining.md)

    λ_list·[L_P(u, S) + Σ_b L_P(u[:, :b], S)]  +  λ_nce·NT-Xent(u, fabric)  +  λ_q·L_q(u)  +  λ_kld·KLD

* L_P is the list-wise loss (Eq. 16–17) with the exact fine-grained similarity S (Eq. 6) of the
  generator's labels (coarse, fine, tightness; colour measured from the photo);
* the nested terms ``u[:, :b]`` (b in `nested_bits`, default 32) make the first b bits a good
  code on their own, so one set of weights serves 64 *and* 32 bits (`truncate_bits`);
* NT-Xent is instance discrimination on the relaxed codes: two photos of one generated fabric
  are positives, every other photo of the batch a negative.

Training runs the one loop of `hashing.train.run_loop`: this module is its data source
(`SyntheticBatches`, generated on the fly) and its objective is
`hashing.objectives.SelfSupervisedObjective` (DVSH's `dvsh_loss` plus NT-Xent).

The result is written as a normal fabricsearch checkpoint (safetensors + JSON), stored in
float16 to keep the shipped file small. `fabricsearch/resources/models/README.md` gives the command that
reproduces it.
"""

from __future__ import annotations

import copy
import logging
import queue
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fabricsearch.config import PretrainConfig, config_to_dict
from fabricsearch.hashing import checkpoint as ckpt
from fabricsearch.hashing.base import Batch, HashMethod
from fabricsearch.hashing.data import augment, work_size_for
from fabricsearch.hashing.device import resolve_device
from fabricsearch.hashing.objectives import SelfSupervisedObjective
from fabricsearch.hashing.schedule import LRSchedule
from fabricsearch.jobs import CancelToken, ProgressFn, check
from fabricsearch.resources import resource_path

if TYPE_CHECKING:
    from fabricsearch.catalogue import Library, ModelInfo
    from fabricsearch.similarity import LabelArrays
    from fabricsearch.taxonomy import Taxonomy

log = logging.getLogger(__name__)

SHIPPED_DIR = resource_path("models")
SHIPPED_BITS = 64
SHIPPED_NOTE = "shipped synthetic-pretrained model"


def pretrained_version(bits: int = SHIPPED_BITS, method: str = "dvsh") -> str:
    """Library version id (and file stem) of a pretrained model, e.g. ``pretrained-dvsh-64``."""
    return f"pretrained-{method}-{bits}"


def shipped_model_path() -> Path:
    """The shipped 64-bit pretrained model file (it may be missing in a bare checkout)."""
    return SHIPPED_DIR / f"{pretrained_version()}.safetensors"


@dataclass
class PretrainResult:
    path: Path
    method: HashMethod  # float32 weights, eval mode, on CPU
    steps: int
    train_time_s: float
    device: str
    history: list[dict[str, float]]
    metrics: dict[str, float]


# --- synthetic batches -------------------------------------------------------------------------
def synthetic_labels(taxonomy: Taxonomy, specs: list[Any], images: np.ndarray) -> LabelArrays:
    """Exact labels of generated photos; colour is measured from each photo (`colour.quantise`)."""
    from fabricsearch.colour import quantise
    from fabricsearch.similarity import LabelArrays

    return LabelArrays.from_records(
        taxonomy,
        [s.coarse for s in specs],
        [s.fine for s in specs],
        [s.tightness for s in specs],
        [quantise(im) for im in images],
    )


def synthetic_batch(
    rng: np.random.Generator, taxonomy: Taxonomy, n_fabrics: int, photos_per_fabric: int, size: int
) -> tuple[np.ndarray, LabelArrays, np.ndarray]:
    """Generate `n_fabrics` × `photos_per_fabric` photos → (uint8 images, labels, fabric ids)."""
    from fabricsearch.synth import generate_batch

    images, specs, ids = generate_batch(rng, n_fabrics, photos_per_fabric, size)
    return images, synthetic_labels(taxonomy, specs, images), ids


class _Prefetch:
    """Generates the next synthetic batches in one background thread (numpy and OpenCV release
    the GIL, so rendering overlaps the network step). One thread and one seeded generator keep
    the stream deterministic."""

    def __init__(self, cfg: PretrainConfig, taxonomy: Taxonomy, depth: int = 2) -> None:
        self._rng = np.random.default_rng([cfg.seed, 0x5EED])
        self._cfg = cfg
        self._taxonomy = taxonomy
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="synth-prefetch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        c = self._cfg
        ws = work_size_for(c.input_size)
        try:
            while not self._stop.is_set():
                item = synthetic_batch(
                    self._rng, self._taxonomy, c.batch_fabrics, c.photos_per_fabric, ws
                )
                while not self._stop.is_set():
                    try:
                        self._queue.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        continue
        except BaseException as exc:  # surfaced to the consumer
            self._queue.put(exc)

    def get(self) -> tuple[np.ndarray, LabelArrays, np.ndarray]:
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class SyntheticBatches:
    """The data source of pretraining for `hashing.train.run_loop`: an endless stream of
    generated fabrics (`_Prefetch`), augmented with the run's generator, with the exact
    similarity S of their labels and the fabric of each photo as its contrastive group.
    A context manager: leaving it stops the generating thread."""

    def __init__(self, cfg: PretrainConfig, taxonomy: Taxonomy, device: torch.device) -> None:
        self.cfg, self.device = cfg, device
        self.batch_size = cfg.batch_fabrics * cfg.photos_per_fabric
        self._prefetch = _Prefetch(cfg, taxonomy)

    def __enter__(self) -> SyntheticBatches:
        return self

    def __exit__(self, *exc: object) -> None:
        self._prefetch.close()

    def begin_epoch(self, generator: torch.Generator) -> None:
        pass  # a stream: nothing to shuffle

    def batch(self, i: int, generator: torch.Generator) -> Batch:
        from fabricsearch.hashing.base import BatchLabels
        from fabricsearch.similarity import fine_grained_torch

        raw, labels, ids = self._prefetch.get()
        images = augment(raw, self.cfg.input_size, generator).to(self.device, non_blocking=True)
        bl = BatchLabels(*labels.to_torch(self.device))
        return Batch(
            images=images,
            labels=bl,
            S=fine_grained_torch(*bl.as_tuple()),
            groups=torch.as_tensor(ids, device=self.device),
        )


# --- pretraining -------------------------------------------------------------------------------
def pretrain_objective(cfg: PretrainConfig) -> SelfSupervisedObjective:
    """DVSH's objective with the pretraining weights: list-wise on the generated labels (and on
    the nested prefixes), NT-Xent over the photos of each generated fabric."""
    return SelfSupervisedObjective(
        nested_bits=cfg.nested_bits,
        lambda_list=cfg.lambda_list,
        lambda_nce=cfg.lambda_nce,
        nce_temperature=cfg.nce_temperature,
        lambda_q=cfg.lambda_q,
        lambda_kld=cfg.lambda_kld,
    )


def build_pretrain_method(cfg: PretrainConfig) -> HashMethod:
    from fabricsearch.hashing.registry import create_method

    method = create_method(
        cfg.method, bits=cfg.bits, input_size=cfg.input_size, **cfg.method_options
    )
    if not hasattr(method.config, "variational"):
        raise ValueError("synthetic pretraining supports the DVSH family of methods")
    return method


def pretrain(
    cfg: PretrainConfig,
    out_dir: str | Path,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> PretrainResult:
    """Pretrain on generated fabrics and write ``<out_dir>/pretrained-<method>-<bits>.safetensors``
    (+ JSON). CUDA with mixed precision is used when present. Raises `jobs.Cancelled` (nothing
    is written then)."""
    from fabricsearch.hashing.train import LoopPlan, run_loop, seeded, training_context
    from fabricsearch.taxonomy import Taxonomy

    t0 = time.perf_counter()
    device = resolve_device(cfg.device)
    gen = seeded(cfg.seed)
    taxonomy = Taxonomy.default()
    method = build_pretrain_method(cfg).to(device)
    objective = pretrain_objective(cfg)
    ctx = training_context(method, objective, cfg, device, cfg.amp, gen)
    plan = LoopPlan(
        stage="pretrain",
        epochs=1,  # one pass over an endless stream
        steps_per_epoch=cfg.steps,
        batch_size=cfg.batch_fabrics * cfg.photos_per_fabric,
        schedule=LRSchedule("cosine", warmup_frac=cfg.warmup_frac, floor=0.05),
        log_every=max(1, cfg.steps // 20),
        epoch_keys=(),  # a stream has no epochs to show
    )
    with SyntheticBatches(cfg, taxonomy, device) as source:
        state = run_loop(method, ctx, source, plan, objective, progress=progress, cancel=cancel)
    history: list[dict[str, float]] = state.history
    train_time = time.perf_counter() - t0
    method.eval()

    metrics: dict[str, float] = {"train_time_s": train_time, "steps": float(cfg.steps)}
    if cfg.eval_fabrics:
        check(cancel)
        for bits, value in synthetic_map(method, cfg.eval_fabrics, seed=cfg.seed + 10_000).items():
            metrics[f"synthetic_mAP_{bits}"] = value

    out_dir = Path(out_dir)
    path = out_dir / f"{pretrained_version(cfg.bits, cfg.method)}.safetensors"
    meta = ckpt.build_metadata(
        method,
        train_config=cfg.to_dict(),
        taxonomy_version=taxonomy.version,
        training_fingerprint=f"synthetic:seed={cfg.seed}:steps={cfg.steps}",
        metrics=metrics,
        version=pretrained_version(cfg.bits, cfg.method),
    )
    meta.extra.update(
        {
            "pretrained": "synthetic fabrics (fabricsearch.synth), generated on the fly",
            "nested_bits": list(cfg.nested_bits),
            "history": history,
            "device": str(device),
            "reproduce": f"fabricsearch pretrain {out_dir.as_posix()} --steps {cfg.steps} --seed {cfg.seed}",
        }
    )
    saved = method.to("cpu")
    if cfg.half_weights:
        saved = copy.deepcopy(saved).half()
    ckpt.save_checkpoint(path, saved, meta)
    return PretrainResult(
        path=path,
        method=method.float().eval(),
        steps=cfg.steps,
        train_time_s=train_time,
        device=str(device),
        history=history,
        metrics=metrics,
    )


def synthetic_map(
    method: HashMethod, n_fabrics: int = 60, seed: int = 10_000, photos_per_fabric: int = 2
) -> dict[int, float]:
    """mAP of `method` on a held-out generated set (every photo queries all others), at the
    method's bits and every nested prefix it was trained for (read from nothing: 32 if < bits)."""
    from fabricsearch.hashing.encode import encode_cached
    from fabricsearch.hashing.metrics import evaluate_codes
    from fabricsearch.taxonomy import Taxonomy

    rng = np.random.default_rng([seed, 0xE7A1])
    images, labels, _ids = synthetic_batch(
        rng, Taxonomy.default(), n_fabrics, photos_per_fabric, work_size_for(method.input_size)
    )
    codes = encode_cached(method, images)
    out: dict[int, float] = {}
    for bits in sorted({method.bits, *(b for b in (32,) if b < method.bits)}):
        c = codes[:, :bits]
        out[bits] = float(evaluate_codes(c, c, labels, labels, ks=(10,), exclude_self=True).mAP)
    return out


# --- shipped model -----------------------------------------------------------------------------
def truncate_bits(method: HashMethod, bits: int) -> HashMethod:
    """A copy of a DVSH model that outputs only the first `bits` bits of its code.

    In DVSH each bit is one block of the structural layer (rows 2m, 2m+1 of its weight and of
    the code normalisation), so keeping the first `bits` blocks gives exactly the code prefix; pretraining trains the
    32-bit prefix to be a code of its own (nested list-wise loss)."""
    from fabricsearch.config import replace
    from fabricsearch.hashing.registry import create_method

    if bits == method.bits:
        return method
    if bits > method.bits or bits <= 0 or bits % 8:
        raise ValueError(f"cannot truncate a {method.bits}-bit model to {bits} bits")
    cfg = replace(method.config, bits=bits)
    small = create_method(method.name, config=cfg)
    want = small.state_dict()
    state: dict[str, torch.Tensor] = {}
    for key, value in method.state_dict().items():
        if key in want and want[key].shape != value.shape:
            # Only the code layers (struct blocks / hash layer and their norm) depend on K; their
            # rows are ordered bit by bit, so the first rows belong to the first bits.
            if want[key].shape[1:] != value.shape[1:] or want[key].shape[0] > value.shape[0]:
                raise ValueError(f"cannot truncate {key}: {tuple(value.shape)}")
            value = value[: want[key].shape[0]]
        state[key] = value.clone()
    small.load_state_dict(state, strict=True)
    return small.to(next(method.parameters()).device).eval()


def load_pretrained(
    bits: int = SHIPPED_BITS, path: str | Path | None = None, device: str | torch.device = "cpu"
) -> tuple[HashMethod, ckpt.CheckpointMeta]:
    """Load the shipped (or the given) pretrained model, truncated to `bits` if fewer."""
    path = Path(path) if path is not None else shipped_model_path()
    method, meta = ckpt.load_checkpoint(path, device=device)
    method = method.float()
    if bits != method.bits:
        method = truncate_bits(method, bits)
        meta = copy.copy(meta)
        meta.bits = bits
        meta.method_config = config_to_dict(method.config)
        meta.version = pretrained_version(bits, meta.method)
    return method, meta


def install_default_model(
    lib: Library, bits: int | None = None, source: str | Path | None = None
) -> ModelInfo | None:
    """Copy the shipped pretrained model (or `source`) into the library's models folder and
    register it (version ``pretrained-dvsh-<bits>``); it becomes active only if no model is
    active. `bits` below the file's (e.g. 32) installs the nested code prefix (`truncate_bits`).

    Returns the model (also when it was already installed), or None when no shipped model is
    available (a bare checkout without ``fabricsearch/resources/models``). Codes are not computed here:
    call `search.encode_missing(lib)` after importing images."""
    from fabricsearch.catalogue import ModelInfo

    src = Path(source) if source is not None else shipped_model_path()
    if not src.exists():
        log.warning("no shipped model at %s; the library starts without a model", src)
        return None
    src_meta = ckpt.read_metadata(src)
    bits = src_meta.bits if bits is None else int(bits)
    version = pretrained_version(bits, src_meta.method)
    for info in lib.models():
        if info.version == version:
            return info
    lib.models_dir.mkdir(parents=True, exist_ok=True)
    dest = lib.models_dir / f"{version}.safetensors"
    if bits == src_meta.bits:
        shutil.copyfile(src, dest)
        shutil.copyfile(ckpt.metadata_path(src), ckpt.metadata_path(dest))
        meta = src_meta
    else:
        method, meta = load_pretrained(bits, src)
        ckpt.save_checkpoint(dest, method, meta)
    info = ModelInfo(
        version=version,
        method=meta.method,
        bits=bits,
        path=dest,
        created=time.time(),
        metrics={k: v for k, v in meta.metrics.items() if k.startswith("synthetic")},
        note=SHIPPED_NOTE,
        kind="shipped",
    )
    lib.add_model(info, activate=lib.active_model() is None)
    return info


def resolve_init(name_or_path: str | Path | None, lib: Library | None = None) -> Path | None:
    """`--init` values → weights file: "scratch"/None → None, "pretrained" → the shipped model,
    "adapted" → the library's newest self-supervised adapted model, anything else a path."""
    from fabricsearch.catalogue import LibraryError

    if name_or_path is None:
        return None
    name = str(name_or_path).strip()
    key = name.lower()
    if key in ("", "scratch"):
        return None
    if key == "pretrained":
        path = shipped_model_path()
        if not path.exists():
            raise LibraryError(f"the shipped pretrained model is missing ({path})")
        return path
    if key == "adapted":
        if lib is None:
            raise LibraryError("--init adapted needs a library")
        adapted = [m for m in lib.models() if m.kind == "adapted"]
        if not adapted:
            raise LibraryError("this library has no adapted model yet (run `fabricsearch adapt`)")
        return adapted[0].path  # models() is newest first
    path = Path(name).expanduser()
    if not path.exists():
        raise LibraryError(f"init weights {path} do not exist")
    return path

"""Searching well before any label: the pretrained backbone plus a label-free head.

A new library's photos are searchable at once through the ImageNet-pretrained backbone: after
each import, while no trained model is active (none, the shipped synthetic model, or an earlier
automatic head), ITQ (PCA + iterative quantisation rotation, Gong & Lazebnik 2011) is fitted on
the backbone features of every photo in the library and becomes the active model. No label is
used, so fitting on the test split too is not a leak. The fit is about a second for thousands
of images once their features are cached; the features are cached for later training anyway.

A trained model is never replaced by this: once staff have trained on labels, imports only
encode the new photos with that model.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from fabricsearch.jobs import CancelToken, ProgressFn

if TYPE_CHECKING:
    from fabricsearch.catalogue import Library, ModelInfo

log = logging.getLogger(__name__)

#: The version prefix of automatic heads (the shipped model's is `pretrain.pretrained_version`):
#: a name only, for people reading a list of models. What a model is, is its ``kind``
#: (`catalogue.MODEL_KINDS`).
AUTO_PREFIX = "auto-"
AUTO_BITS = 64
AUTO_NOTE = "label-free: ITQ on the pretrained backbone's features of this library's photos"


def is_automatic(model: ModelInfo) -> bool:
    """Models the library may replace on its own: the shipped one and automatic heads (by
    their recorded kind, never by their version string)."""
    from fabricsearch.catalogue.library import REPLACEABLE_KINDS

    return model.kind in REPLACEABLE_KINDS


def wants_auto_head(lib: Library) -> bool:
    """True when the pretrained backbone is installed and no trained model is active."""
    from fabricsearch.hashing.backbones import DEFAULT_BACKBONE, backbone_available

    if not backbone_available(DEFAULT_BACKBONE):
        return False
    active = lib.active_model()
    return active is None or is_automatic(active)


def fit_auto_head(
    lib: Library,
    bits: int = AUTO_BITS,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    backbone: str | None = None,
) -> ModelInfo | None:
    """Fit and activate the label-free head on every image of the library, on `backbone`'s
    features (the default network unless given; None if fewer than two images). Earlier
    automatic heads that are not active are removed."""
    from fabricsearch.config import TrainConfig
    from fabricsearch.hashing.backbones import DEFAULT_BACKBONE, get_spec
    from fabricsearch.hashing.train import (
        library_training_data,
        publish_model,
        train,
        unique_model_version,
    )
    from fabricsearch.threads import threads_for, torch_threads

    n = lib.count()
    if n < 2:
        return None
    backbone = backbone or DEFAULT_BACKBONE
    bits = min(bits, get_spec(backbone).feature_dim)
    cfg = TrainConfig(method="itq", bits=bits, backbone=backbone, augment=False)
    data = library_training_data(lib, labelled_only=False, fit_all=True)
    t0 = time.perf_counter()
    try:
        # The fit is one eigendecomposition and a few matrix products: on a busy 2-core
        # machine torch's default two threads made the 1280×1280 eigh 3–15× slower than one
        # (issue 23), so the thread policy of batches applies (`threads.threads_for`).
        with torch_threads(threads_for(n)):
            result = train(data, cfg, progress, cancel)
    except ValueError as exc:  # e.g. fewer than two photos decode: keep the current model
        log.warning("no label-free search model fitted: %s", exc)
        return None
    previous = [m.version for m in lib.models() if m.kind == "automatic"]
    info = publish_model(
        lib,
        result.method,
        unique_model_version(lib, "itq", bits, prefix=AUTO_PREFIX),
        metrics={"train_time_s": time.perf_counter() - t0},
        train_config=result.config.to_dict(),
        fingerprint=result.fingerprint,
        extra={"images": n},
        note=AUTO_NOTE,
        progress=progress,
        cancel=cancel,
        label_free=True,
        kind="automatic",
    )
    active = lib.active_model()
    old = {m.version: m for m in lib.models()}
    for version in previous:
        if active is not None and version != active.version and version in old:
            try:
                lib.remove_model(version)
                path = old[version].path
                path.unlink(missing_ok=True)
                path.with_suffix(".json").unlink(missing_ok=True)
            except OSError:  # an old head that cannot be removed is harmless
                log.warning("could not remove the earlier automatic head %s", version)
    return info

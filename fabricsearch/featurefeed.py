"""Backbone features computed while an import decodes (issue 23, "Fast on a real archive").

The import's worker processes decode each new photo once and also return the backbone's input
(`importer.measure_file` with ``net_size``: `extract.decode_for`'s pixels, centre-cropped
by `hashing.data.prepare_image`, so exactly what `extract.compute_features` would feed
the network). A `FeatureFeed` takes those inputs as the import hands them over and runs the
network on them in one thread of the importing process, in batches, appending each batch to
the library's feature store. When the import ends, the store already holds the new photos'
features, and the label-free head fit and the encoding that follow
(`workflows.import_and_encode`) read them instead of decoding every file a second time.

Nothing here is needed for correctness: the store is keyed by content hash and append-only,
so a killed or cancelled import leaves at most rows that a later run would compute anyway
(`FeatureStore.add` trims a ragged tail), and a feed that fails (no backbone weights, a full
disk) only logs: the features it did not store are computed the old way afterwards
(`extract.ensure_features`), which reports the error again where it matters.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from typing import Any

import numpy as np

from fabricsearch.jobs import CancelToken, ProgressFn, report

log = logging.getLogger(__name__)

#: Images per network call (as `extract.compute_features`).
BATCH_SIZE = 32
_END = None


class FeatureFeed:
    """A thread that turns prepared backbone inputs into stored features (module docstring).

    Use as a context manager around the import; `close` waits for the queued inputs (leaving
    the context by an exception drops them)."""

    def __init__(
        self,
        library_folder: str | os.PathLike[str],
        backbone: str,
        device: str = "cpu",
        batch_size: int = BATCH_SIZE,
    ) -> None:
        from fabricsearch.hashing.backbones import get_spec

        self.backbone = backbone
        self.input_size = get_spec(backbone).input_size
        self.library_folder = library_folder
        self.device = device
        self.batch_size = batch_size
        self.received = 0  # inputs handed over
        self.done = 0  # inputs whose feature is stored (or was already)
        self.seconds = 0.0  # time spent in the network and the store
        self._queue: queue.Queue[tuple[str, bytes] | None] = queue.Queue(maxsize=2 * batch_size)
        self._stop = threading.Event()
        # True once the import has handed over its last input: its decoders no longer need
        # the cores, and the network may take every free one (`_serve`).
        self._draining = False
        self._thread = threading.Thread(target=self._run, name="feature-feed", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ producer side
    def put(self, sha256: str, square: bytes) -> None:
        """Queue one photo's prepared input (uint8 (S, S, 3) bytes); blocks while the network
        is behind (so inputs never pile up in memory); a no-op once the feed has failed."""
        while self._thread.is_alive() and not self._stop.is_set():
            try:
                self._queue.put((sha256, square), timeout=0.2)
                self.received += 1
                return
            except queue.Full:
                continue

    def close(self, progress: ProgressFn | None = None, cancel: CancelToken | None = None) -> None:
        """Wait until every queued input has its feature stored (progress stage ``features``).
        Cancelling stops at the next batch; what was stored stays."""
        self._draining = True
        self._send_end()
        while self._thread.is_alive():
            if cancel is not None and cancel.cancelled:
                self.abort()
                return
            report(progress, "features", self.done, self.received, "img")
            self._thread.join(timeout=0.5)
        report(progress, "features", self.done, self.received, "img")

    def abort(self) -> None:
        """Stop now: drop the queued inputs and wait for the batch in the network."""
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._send_end()
        self._thread.join()

    def _send_end(self) -> None:
        while self._thread.is_alive():
            try:
                self._queue.put(_END, timeout=0.2)
                return
            except queue.Full:
                continue

    def __enter__(self) -> FeatureFeed:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None or self._thread.is_alive():
            self.abort()

    # ------------------------------------------------------------------ network side
    def _run(self) -> None:
        try:
            self._serve()
        except BaseException as exc:  # never let the import fail for a cache
            self._stop.set()
            log.warning(
                "features could not be computed during the import (%s: %s); they are "
                "computed after it",
                type(exc).__name__,
                exc,
            )

    def _serve(self) -> None:
        import torch

        from fabricsearch.featurestore import store_for
        from fabricsearch.hashing.backbones import load_backbone
        from fabricsearch.hashing.extract import forward_batch
        from fabricsearch.threads import threads_for, torch_threads

        dev = torch.device(self.device)
        net = load_backbone(self.backbone, dev, fused=True)
        store = store_for(self.library_folder, self.backbone)
        s = self.input_size
        ended = False
        while not ended and not self._stop.is_set():
            batch: list[tuple[str, bytes]] = []
            while len(batch) < self.batch_size:
                item = self._queue.get()
                if item is _END:
                    ended = True
                    break
                batch.append(item)
            if not batch or self._stop.is_set():
                continue
            t0 = time.perf_counter()
            shas = [sha for sha, _ in batch]
            todo = np.flatnonzero(store.rows(shas) < 0)  # a photo seen before keeps its row
            if len(todo):
                arr = np.stack(
                    [np.frombuffer(batch[i][1], np.uint8).reshape(s, s, 3) for i in todo]
                )
                # The network pass of extract.compute_features, so the same feature. While the
                # network waits for the decoders (camera photos), they hold the free cores: one
                # torch thread (a second mostly spin-waits for a core, fabricsearch/threads.py).
                # When a next batch already waits (small photos: the decoders are blocked on
                # this queue) or the import is done, the free cores.
                ahead = self._queue.qsize() >= self.batch_size
                n = threads_for(len(todo)) if self._draining or ahead else 1
                with torch_threads(n):
                    f = forward_batch(net, arr, dev)
                store.add([shas[i] for i in todo], f)
            self.done += len(batch)
            self.seconds += time.perf_counter() - t0


def feature_backbone(lib: Any) -> str | None:
    """The backbone whose features the import should compute for ``lib``: the default one
    while the label-free head is (or becomes) the search model, else None (a trained model
    encodes from what `encode_missing` computes; the compact network needs no features)."""
    from fabricsearch.autohead import wants_auto_head
    from fabricsearch.hashing.backbones import DEFAULT_BACKBONE

    return DEFAULT_BACKBONE if wants_auto_head(lib) else None

"""One progress for a job made of stages: a fraction of the whole job that never goes back, the
stage in plain words, and one time left for everything (issue 24 item 8).

A long job reports its stages one after another, each counting from 0 (`jobs.Progress`): an
import scans the folder, reads the photos, computes their features, fits the search model and
encodes. Shown as they come, a bar restarts at every stage and each stage's own "time left"
says nothing about the whole. A `StagePlan` lists a job's stages in order with what each is
expected to cost (seconds: fixed plus per item, measured for the import in
`workflows.import_plan`); `OverallProgress` turns every report into the share of the job's
expected cost done so far and the time left from the job's own pace. The CLI and the window
may both use it; it knows nothing of either.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from fabricsearch.jobs import Progress


@dataclass(frozen=True)
class Stage:
    """One step of a job: the stage names its reports carry (``names``), what the user reads
    (``label``) and its expected cost, ``fixed`` seconds plus ``per_item`` seconds per item."""

    names: tuple[str, ...]
    label: str
    per_item: float = 0.0
    fixed: float = 0.0

    def cost(self, items: int) -> float:
        return self.fixed + self.per_item * max(0, items)


@dataclass(frozen=True)
class StagePlan:
    """A job's stages in the order they run. ``count_stage``: the stage whose ``total`` is the
    number of items the per-item costs are counted on (the photos an import reads)."""

    stages: tuple[Stage, ...]
    count_stage: str = ""

    def index(self, name: str) -> int | None:
        for i, stage in enumerate(self.stages):
            if name in stage.names:
                return i
        return None


@dataclass(frozen=True)
class Overall:
    """The whole job as the user sees it: ``fraction`` 0–1 (never smaller than the one before),
    the current stage's ``label``, and ``seconds_left`` (None until the pace is known)."""

    fraction: float
    label: str
    seconds_left: float | None
    stage: Progress | None = None

    @property
    def percent(self) -> int:
        return int(self.fraction * 100)


class OverallProgress:
    """Turns a job's stage reports into `Overall` (module docstring). Not thread-safe: feed it
    from one thread (the window feeds it the worker's throttled signals)."""

    #: The pace is trusted once this share of the job and this many seconds have passed.
    MIN_FRACTION = 0.02
    MIN_SECONDS = 1.0

    def __init__(self, plan: StagePlan, items: int = 0, now: float | None = None) -> None:
        self.plan = plan
        self.items = items
        self.started = time.monotonic() if now is None else now
        self.fraction = 0.0
        self.label = plan.stages[0].label if plan.stages else ""
        self._index = 0
        self._expected_total: float | None = None  # seconds, smoothed
        self._last: Progress | None = None

    def _costs(self) -> list[float]:
        return [s.cost(self.items) for s in self.plan.stages]

    def _share(self, index: int, stage_fraction: float) -> float:
        costs = self._costs()
        whole = sum(costs)
        if whole <= 0:
            return 0.0
        return (sum(costs[:index]) + costs[index] * stage_fraction) / whole

    def update(self, p: Progress, now: float | None = None) -> Overall:
        """Take one report; the job as a whole after it."""
        now = time.monotonic() if now is None else now
        self._last = p
        if p.stage == self.plan.count_stage and p.total is not None:
            self.items = p.total
        index = self.plan.index(p.stage)
        if index is not None:
            self.label = self.plan.stages[index].label
            if index >= self._index:
                self._index = index
                frac = p.fraction if p.fraction is not None else 0.0
                self.fraction = max(self.fraction, min(1.0, self._share(index, frac)))
            # An earlier stage again (features computed after all): the bar stays where it is.
        self._pace(now)
        return self.current(now)

    def _pace(self, now: float) -> None:
        elapsed = now - self.started
        if self.fraction < self.MIN_FRACTION or elapsed < self.MIN_SECONDS:
            return
        total = elapsed / self.fraction
        prev = self._expected_total
        # Smoothed, so one slow or quick batch does not make the estimate jump.
        self._expected_total = total if prev is None else 0.7 * prev + 0.3 * total

    def current(self, now: float | None = None) -> Overall:
        """The job now: between reports the time left keeps counting down."""
        now = time.monotonic() if now is None else now
        left = None
        if self._expected_total is not None:
            left = max(0.0, self._expected_total - (now - self.started))
        return Overall(self.fraction, self.label, left, self._last)

"""Training, adaptation, versions and evaluation from the Model menu."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMessageBox

if TYPE_CHECKING:
    from fabricsearch.gui.session import LibrarySession
    from fabricsearch.gui.shell import RecordsView, Shell


class _Labels:
    """What the training dialog reads of a record: whether it is labelled, and when."""

    __slots__ = ("labelled", "labelled_at")

    def __init__(self, labelled: bool, labelled_at: float | None = None) -> None:
        self.labelled = labelled
        self.labelled_at = labelled_at


def label_rows(lib: Any, count: int) -> list[_Labels]:
    """One stand-in per image for `TrainOptionsDialog` (issue 23: not every record read;
    1M images: the labelled rows' label times, 0.3 s)."""
    labelled = [_Labels(True, at) for at in lib.label_times()]
    return labelled + [_Labels(False)] * max(0, count - len(labelled))


class TrainingController(QObject):
    #: What the status bar's training button says while a training runs.
    progressShown = Signal(str)
    runningChanged = Signal(bool)  # the training button shown (a training runs) or not
    ended = Signal(str)  # finished | failed | cancelled

    def __init__(
        self,
        session: LibrarySession,
        shell: Shell,
        records: RecordsView,
        base_config: Any = None,
    ) -> None:
        super().__init__(session)
        self.session = session
        self.shell = shell
        self.records = records  # how many images there are (the options dialog's counts)
        self._base_config = base_config  # a TrainConfig; None = the defaults
        self.dialog: Any = None  # the latest training's progress window

    def base_config(self) -> Any:
        from fabricsearch.config import TrainConfig

        return self._base_config if self._base_config is not None else TrainConfig()

    def running(self) -> bool:
        return self.shell.runner.running("train")

    def retrain_dialog(self) -> None:
        from fabricsearch.gui.dialogs.train_dialog import TrainOptionsDialog

        if self.session.library is None:
            return
        from fabricsearch.services.training import measured_step_seconds

        lib = self.session.library
        dialog = TrainOptionsDialog(
            label_rows(lib, self.records.count_all()),
            self.session.active_model,
            self.base_config(),
            self.shell.dialog_parent(),
            step_seconds=lambda kind, gpu: measured_step_seconds(lib, kind, gpu),
        )
        self.shell.runner.last_dialog = dialog
        dialog.accepted.connect(lambda: self.start_training(dialog.config()))
        dialog.open()

    def start_training(self, config: Any) -> Any:
        """Train in a worker with the live progress window; the new model becomes active."""
        from fabricsearch.gui.dialogs.train_dialog import TrainingProgressDialog
        from fabricsearch.services.training import train

        if self.session.library is None:
            return None
        if self.running():
            self.shell.sink.inform("Training", "A training is already running.")
            return None

        def make_dialog(worker: Any) -> Any:
            self.dialog = TrainingProgressDialog(worker, config, self.shell.dialog_parent())
            return self.dialog

        worker = self.shell.runner.start(
            partial(train, self.session.library, config),
            name="train",
            slot="train",
            dialog=make_dialog,
            modal=False,
            on_finished=lambda _info: self._ended("finished"),
            on_failed=lambda _m: self._ended("failed"),
            on_cancelled=lambda: self._ended("cancelled"),
            on_progress=self._show_progress,
        )
        self.progressShown.emit("Training…")
        self.runningChanged.emit(True)
        return worker

    def show_training(self) -> None:
        """Bring back the latest training's progress window (also after Run in background)."""
        if self.dialog is not None:
            self.dialog.show()
            self.dialog.raise_()
            self.dialog.activateWindow()

    def _show_progress(self, p: Any) -> None:
        info = p.info or {}
        if "epoch" in info and info.get("epochs"):
            text = f"Training: epoch {info['epoch']} of {info['epochs']}"
        elif p.total:
            text = f"Training: {p.stage} {100 * p.done // max(1, p.total)} %"
        else:
            text = f"Training: {p.stage}"
        self.progressShown.emit(text)

    def adapt_dialog(self) -> None:
        if self.session.library is None:
            return
        answer = QMessageBox.question(
            self.shell.dialog_parent(),
            "Adapt to this library",
            "Tune the search model to this library's own photos, without labels "
            "(self-supervised). This takes a few minutes on a laptop CPU; the current model "
            "stays available under Model ▸ Versions.",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.start_adapt()

    def start_adapt(self, config: Any = None) -> Any:
        """Self-supervised adaptation in a worker; the adapted model becomes active."""
        from fabricsearch.services.training import AdaptConfig, adapt

        if self.session.library is None:
            return None
        if self.running():
            self.shell.sink.inform("Adapt", "A training is already running.")
            return None
        return self.shell.runner.start(
            partial(adapt, self.session.library, config or AdaptConfig()),
            name="adapt",
            slot="train",
            dialog="Adapting the model to this library",
            on_finished=lambda info: (self._report_adapted(info), self._ended("finished")),
            on_failed=lambda m: (
                self.shell.sink.inform("Adapt", f"Adaptation failed: {m}", warning=True),
                self._ended("failed"),
            ),
            on_cancelled=lambda: self._ended("cancelled"),
        )

    def _report_adapted(self, info: Any) -> None:
        from fabricsearch.services.versions import read_decision

        decision = read_decision(info)
        if decision is not None and not decision.activate:
            self.shell.sink.inform(
                "Adapt",
                f"The adapted model {info.version} was saved but not activated: "
                f"{decision.reason}. The previous model stays active; Model ▸ Versions can "
                "switch to it.",
            )

    def _ended(self, outcome: str) -> None:
        self.runningChanged.emit(False)
        if (
            self.dialog is not None
            and not self.dialog.isVisible()
            and getattr(self.dialog, "worker", None) is self.shell.runner.worker("train")
        ):
            self.show_training()  # it ran in the background: show how it ended
        if outcome == "finished":
            # The searcher, the status bar and the suggestions follow the session.
            self.session.refresh_active_model(announce=True)
        self.ended.emit(outcome)

    def show_versions(self) -> None:
        from fabricsearch.gui.dialogs.versions_dialog import VersionsDialog

        if self.session.library is None:
            return
        # Opens at once; the models are evaluated in a worker (issue 24).
        dialog = VersionsDialog(self.session.library, self.shell.runner, self.shell.dialog_parent())
        dialog.activeChanged.connect(lambda _v: self.session.refresh_active_model(announce=True))
        self.shell.runner.last_dialog = dialog
        dialog.open()

    def evaluate(self) -> Any:
        from fabricsearch.gui.dialogs.evaluate_dialog import EvaluateDialog, evaluate_active_model

        if self.session.library is None:
            return None
        active = self.session.active_model
        if active is None:
            self.shell.sink.inform(
                "Evaluate", "There is no model yet: train one with Model ▸ Retrain."
            )
            return None
        return self.shell.runner.start(
            partial(evaluate_active_model, self.session.library),
            name="evaluate",
            slot="evaluate",
            dialog=lambda worker: EvaluateDialog(
                worker, active.version, self.shell.dialog_parent()
            ),
        )

"""Callbacks that make a training run survive a crash and refuse to keep a diverged model.

`fault_tolerance_callbacks(backup_dir)` is what `MemAE.fit(..., backup_dir=...)`
adds to the user's callbacks:

- `NonFiniteLossGuard`: when an epoch ends with a NaN or Inf loss, the weights
  of the last good epoch are put back and `NonFiniteLossError` stops training.
- `keras.callbacks.BackupAndRestore`: the model and optimiser state (memory
  items included, they are weights) are backed up after every epoch; a run
  started again with the same `backup_dir` (e.g. after SIGKILL) resumes after
  the last finished epoch, so at most the epoch in progress is lost. The
  backup is deleted when training ends normally.
"""

from __future__ import annotations

import json
import logging
import math
import os
import pathlib

import keras

logger = logging.getLogger(__name__)
# Where keras.callbacks.BackupAndRestore keeps the last finished epoch.
_BACKUP_METADATA = "training_metadata.json"


class NonFiniteLossError(RuntimeError):
    """Training stopped because the loss became NaN or Inf."""


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Stops training when an epoch's loss is NaN or Inf and restores the last good state.

    The weights and the optimiser's variables (Adam's moments, its step count)
    are put back as they were after the last finished epoch, so that a later
    `fit` on the same compiled model starts from a sound state. The check runs
    once per epoch (the epoch's mean loss is non-finite as soon as one batch
    is), so it adds no synchronisation to the train steps. Place it before any
    callback that saves the model, so that no diverged weights are written.

    Raises:
        NonFiniteLossError: From `fit`, naming the epoch and the loss value.
    """

    def __init__(self) -> None:
        super().__init__()
        self._good: tuple[list, list] | None = None
        self._good_epoch = 0

    def _snapshot(self) -> tuple[list, list]:
        optimizer = getattr(self.model, "optimizer", None)
        slots = [] if optimizer is None else [v.numpy() for v in optimizer.variables]
        return self.model.get_weights(), slots

    def _restore(self) -> None:
        weights, slots = self._good
        self.model.set_weights(weights)
        if slots:
            for variable, value in zip(self.model.optimizer.variables, slots, strict=True):
                variable.assign(value)

    def on_train_begin(self, logs=None) -> None:
        self._good = self._snapshot()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            self._good, self._good_epoch = self._snapshot(), epoch + 1
            return
        self._restore()
        self.model.stop_training = True
        kept = (f"the weights after epoch {self._good_epoch}" if self._good_epoch
                else "the weights from before this training")
        raise NonFiniteLossError(
            f"The training loss of epoch {epoch + 1} is {float(loss)}; expected a finite "
            f"number. Training stopped and {kept} were kept. Lower the learning rate or "
            "check the data for extreme values."
        )


def resumed_epoch(backup_dir: str | os.PathLike) -> int:
    """The number of epochs a backup in `backup_dir` has finished (0 without a backup)."""
    path = pathlib.Path(backup_dir) / _BACKUP_METADATA
    try:
        return int(json.loads(path.read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def fault_tolerance_callbacks(
    backup_dir: str | os.PathLike | None,
) -> list[keras.callbacks.Callback]:
    """The guard against NaN/Inf losses, then a backup for resuming (when `backup_dir` is set).

    Args:
        backup_dir: Folder of the per-epoch backup; None for no backup.

    Returns:
        Callbacks to run before the user's.
    """
    callbacks: list[keras.callbacks.Callback] = [NonFiniteLossGuard()]
    if backup_dir is not None:
        finished = resumed_epoch(backup_dir)
        if finished:
            logger.warning("Resuming training after epoch %d from the backup in %s.",
                           finished, backup_dir)
        # Two copies, so that a kill while the backup is written falls back to the one before.
        callbacks.append(keras.callbacks.BackupAndRestore(str(backup_dir), double_checkpoint=True))
    return callbacks

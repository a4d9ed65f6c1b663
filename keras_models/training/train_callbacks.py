"""Callbacks of `boxflow train`: a resumable history file, a NaN stop with a clear message, and a
progress line per epoch."""

from __future__ import annotations

import json
import math
import os
import time
from typing import Callable

import keras

from contracts.atomic_file import write_json_atomically


class HistoryFile(keras.callbacks.Callback):
    """Keeps `history.json` (one entry per epoch, floats) across resumed runs: an epoch run
    again after a restart replaces its earlier entry, so each epoch appears once."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        entries = []
        if os.path.exists(self.path):
            with open(self.path) as f:
                entries = [e for e in json.load(f) if e["epoch"] < epoch + 1]
        learning_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        entries.append({"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()},
                        "learning_rate": learning_rate})
        write_json_atomically(self.path, entries, indent=1)


class StopOnNaN(keras.callbacks.Callback):
    """Stops at the first non-finite loss and records why, and in which epoch (from 1).

    Keras still ends that epoch, so its checkpoint holds the broken weights: the caller
    removes it (`bad_epoch`), leaving the previous epoch's as the last good one.
    """

    def __init__(self):
        super().__init__()
        self.message: str | None = None
        self.bad_epoch: int | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self._epoch = epoch + 1

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.bad_epoch = self._epoch
            self.message = (f"the loss became {float(loss)} at batch {batch + 1} of epoch {self._epoch}; training "
                            "stopped. Try a lower learning rate, --mixed-precision off, or check the boxes in the data")
            self.model.stop_training = True


class EpochLog(keras.callbacks.Callback):
    """One progress line per epoch: losses, validation metrics, seconds, and training images per second.

    The rate counts the training steps only (validation excluded), so it can be set against the
    input pipeline's own rate (`benchmarks/input_bench.py --data DIR`) to see which one is slower.
    """

    def __init__(self, epochs: int | None, batch_size: int, progress: Callable[[str], None]):
        super().__init__()
        self.epochs, self.batch_size, self.progress = epochs, batch_size, progress
        self._started = self._last_step_ended = 0.0
        self._steps = 0

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self._started = self._last_step_ended = time.monotonic()
        self._steps = 0

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        self._steps += 1
        self._last_step_ended = time.monotonic()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        logs = logs or {}
        of = f"/{self.epochs}" if self.epochs else ""
        shown = [*self.model.LOSS_NAMES, "val_loss", "val_mAP", "val_mAP50", "val_mIoU"]
        values = ", ".join(f"{name} {float(logs[name]):.4f}" for name in shown if name in logs)
        training_seconds = max(self._last_step_ended - self._started, 1e-9)
        rate = self._steps * self.batch_size / training_seconds
        self.progress(f"[train] epoch {epoch + 1}{of}: {values} ({time.monotonic() - self._started:.0f}s, "
                      f"{rate:.1f} training images/s)")

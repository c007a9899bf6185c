"""The learning-rate decay of `TrainingConfig(lr_decay="cosine")`, as a Keras callback."""

from __future__ import annotations

import math

import keras


def cosine_rate(base_rate: float, progress: float) -> float:
    """`base_rate · ½ (1 + cos(π · progress))`: `base_rate` at 0, zero at 1.

    `progress` is clamped to [0, 1]: the rate stays zero past the end, as
    Keras' `CosineDecay` does past `decay_steps`.

    Example:

    >>> cosine_rate(1e-3, 0.5)
    0.0005
    """
    progress = min(max(progress, 0.0), 1.0)
    return base_rate * 0.5 * (1.0 + math.cos(math.pi * progress))


class CosineLearningRateDecay(keras.callbacks.Callback):
    """Decays the optimizer's learning rate along a half cosine over one `fit` call.

    Before each call into the train function the rate is set to
    `cosine_rate(base_rate, step / total_steps)`, where `step` counts the
    training steps of this `fit` call and `total_steps = epochs × steps`
    (Keras' `params`); when the number of steps per epoch is unknown (a
    dataset of unknown length) the rate changes once per epoch instead. The
    rate reaches zero at the end of the call and is set back to `base_rate`
    when training ends, so that a later `fit` starts from it again. The
    epoch logs get the rate the epoch ended with (`learning_rate` in the
    History). With `steps_per_execution=k` the rate is updated every `k`
    steps, the granularity of Keras' batch callbacks.

    This is SGDR's schedule (Loshchilov & Hutter, 2017) without restarts,
    restarted at every `fit` call: continued training decays again from
    `base_rate`.

    Args:
        base_rate: The rate at the start of every `fit` call (positive float).

    Example:

    >>> import keras
    >>> import numpy as np
    >>> from memae_tf.training import CosineLearningRateDecay
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    >>> x = np.zeros((8, 2), "float32")
    >>> history = model.fit(x, x[:, :1], epochs=2, batch_size=4, verbose=0,
    ...                     callbacks=[CosineLearningRateDecay(1e-2)])
    >>> [round(rate, 4) for rate in history.history["learning_rate"]]
    [0.0085, 0.0015]
    """

    def __init__(self, base_rate: float) -> None:
        super().__init__()
        if isinstance(base_rate, bool) or not isinstance(base_rate, (int, float)) \
                or not base_rate > 0:
            raise ValueError(
                "Received an invalid value for `base_rate`, expected a positive float. "
                f"Received: base_rate={base_rate!r}"
            )
        self.base_rate = float(base_rate)
        self._epoch = 0

    def _set(self, progress: float) -> None:
        self.model.optimizer.learning_rate = cosine_rate(self.base_rate, progress)

    def _fraction(self, epoch: float) -> float:
        return epoch / self.params["epochs"]

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch
        self._set(self._fraction(epoch))

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        steps = self.params.get("steps")
        if steps:
            self._set(self._fraction(self._epoch + batch / steps))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(
                self.model.optimizer.learning_rate))

    def on_train_end(self, logs: dict | None = None) -> None:
        self.model.optimizer.learning_rate = self.base_rate

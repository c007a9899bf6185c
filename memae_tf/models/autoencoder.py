"""What every part of the package needs of an autoencoder, checked in one place."""

from __future__ import annotations

import keras


def check_autoencoder(model: object) -> tuple[int, ...]:
    """Returns the input shape (without batch axis) of a single-input autoencoder.

    Raises:
        TypeError: If `model` is not a `keras.Model`.
        ValueError: If it has several inputs, outputs of another shape than its
            inputs, or an input shape not fully defined apart from the batch axis.

    Example:

    >>> check_autoencoder(keras.Sequential([keras.Input((3,)), keras.layers.Dense(3)]))
    (3,)
    """
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"Expected `model` to be a keras.Model. Received: model of type {type(model)}"
        )
    if len(model.inputs) != 1:
        raise ValueError(f"Expected a model with one input. Received: {len(model.inputs)} inputs")
    if tuple(model.input_shape) != tuple(model.output_shape):
        raise ValueError(
            "Expected an autoencoder mapping inputs to outputs of the same shape. Received: "
            f"input_shape={model.input_shape}, output_shape={model.output_shape}"
        )
    input_shape = tuple(model.input_shape[1:])
    if any(dim is None for dim in input_shape):
        raise ValueError(
            "Expected a model whose input shape is fully defined apart from the batch "
            f"axis. Received: input_shape={model.input_shape}"
        )
    return input_shape

"""Hidden activations shared by the autoencoder builders."""

from __future__ import annotations

import keras

from memae_tf.common.checks import check_choice

_ACTIVATIONS = ("relu", "leaky_relu", "tanh", "elu")


def activation_layer(name: str, prefix: str) -> keras.layers.Layer:
    """Returns the hidden activation layer `name` (LeakyReLU uses slope 0.2)."""
    check_choice("activation", name, _ACTIVATIONS)
    if name == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=0.2, name=prefix)
    return keras.layers.Activation(name, name=prefix)

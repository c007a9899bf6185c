"""The inference view: batch norm folded into convolutions, strided 1×1 convs as slices."""

import keras
import numpy as np
import pytest

from memae_tf import MemAE
from memae_tf.models.bn_folding import inference_model

SMALL = {
    "mnist": {},
    "cifar10": {"filters": (8, 8, 16, 16), "num_items": 20},
    "video": {"input_shape": (4, 16, 16, 1), "filters": (4, 8, 8, 8), "num_items": 20},
}


def _trained(preset: str, **overrides) -> keras.Model:
    """A model whose batch-norm statistics and affine parameters are far from their init."""
    model = MemAE.from_preset(preset, **overrides).model
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            rng = np.random.default_rng(len(layer.name))
            shape = layer.gamma.shape
            layer.set_weights([rng.uniform(0.5, 2.0, shape), rng.normal(0, 0.5, shape),
                               rng.normal(0, 0.5, shape), rng.uniform(0.1, 3.0, shape)])
    return model


@pytest.mark.parametrize("preset", sorted(SMALL))
def test_inference_view_computes_the_model_in_inference_mode(preset):
    model = _trained(preset, **SMALL[preset])
    view = inference_model(model)
    x = np.random.default_rng(0).random((3, *model.input_shape[1:])).astype("float32")
    np.testing.assert_allclose(view(x, training=False), model(x, training=False),
                               rtol=1e-4, atol=1e-5)
    names = {layer.name for layer in view.layers}
    assert not any(name.startswith(("encoder_bn", "decoder_bn")) for name in names)


def test_inference_view_shares_the_models_variables_and_follows_their_updates():
    model = _trained("mnist")
    view = inference_model(model)
    assert {id(v) for v in view.weights} == {id(v) for v in model.weights}
    x = np.random.default_rng(1).random((2, 28, 28, 1)).astype("float32")
    bn = model.get_layer("decoder_bn1")
    bn.moving_mean.assign(bn.moving_mean + 1.0)
    np.testing.assert_allclose(view(x, training=False), model(x, training=False),
                               rtol=1e-4, atol=1e-5)


def test_strided_pointwise_convolution_becomes_a_slice():
    inputs = keras.Input((9, 8, 3))
    outputs = keras.layers.Conv2D(5, 1, strides=2, activation="relu", padding="same")(inputs)
    model = keras.Model(inputs, outputs)
    view = inference_model(model)
    assert view is not model
    x = np.random.default_rng(2).normal(size=(2, 9, 8, 3)).astype("float32")
    np.testing.assert_allclose(view(x), model(x), rtol=1e-5, atol=1e-6)


def test_one_wide_strided_pooling_becomes_a_slice():
    inputs = keras.Input((9, 8, 2))
    outputs = keras.layers.MaxPooling2D(pool_size=1, strides=2, padding="same")(inputs)
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1)(outputs))
    view = inference_model(model)
    assert not any(isinstance(layer, keras.layers.MaxPooling2D) for layer in view.layers)
    x = np.random.default_rng(3).normal(size=(2, 9, 8, 2)).astype("float32")
    np.testing.assert_allclose(view(x), model(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("pool,size,strides", [
    (keras.layers.MaxPooling1D, (12,), (3,)),
    (keras.layers.MaxPooling2D, (8, 12), (2, 3)),      # sizes divisible by the strides
    (keras.layers.MaxPooling2D, (9, 12), (2, 2)),      # 9 is not
    (keras.layers.MaxPooling3D, (4, 6, 10), (1, 2, 2)),
])
def test_one_wide_strided_pooling_keeps_every_stride_th_position(pool, size, strides):
    inputs = keras.Input((*size, 2))
    model = keras.Model(inputs, pool(pool_size=1, strides=strides, padding="same")(inputs))
    view = inference_model(model)
    assert not any(isinstance(layer, pool) for layer in view.layers)
    x = np.random.default_rng(4).normal(size=(3, *size, 2)).astype("float32")
    expected = x[(slice(None), *(slice(None, None, s) for s in strides))]
    np.testing.assert_array_equal(np.asarray(view(x)), expected)


def test_batch_norm_after_an_activation_or_a_shared_output_is_kept():
    inputs = keras.Input((6, 6, 2))
    conv = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    after_activation = keras.layers.BatchNormalization(name="after_activation")(conv)
    linear = keras.layers.Conv2D(4, 3, padding="same", name="linear")(after_activation)
    normalised = keras.layers.BatchNormalization(name="shared")(linear)
    model = keras.Model(inputs, keras.layers.Add()([normalised, linear]))
    assert inference_model(model) is model


def test_models_without_anything_to_rewrite_are_returned_as_is():
    model = MemAE.from_preset("kdd", input_shape=(8,), units=(6, 3), num_items=10).model
    assert inference_model(model) is model
    sequential = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4)])
    assert inference_model(sequential) is sequential

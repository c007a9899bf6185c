"""Sub-pixel transposed convolutions against TensorFlow's kernel and a NumPy scatter."""

import keras
import numpy as np
import pytest

from memae_tf import MemAE
from memae_tf.models.bn_folding import inference_model
from memae_tf.models.subpixel import (
    SUBPIXEL_MAX_CHANNELS,
    conv_transpose_subpixel,
    is_subpixel_candidate,
)

# (input H, W), kernel, strides, padding, output_padding, C_in, C_out; kernels at
# least as large as the stride (TF 2.21's oneDNN kernel corrupts memory otherwise).
CASES = [
    ((14, 14), 3, 2, "same", 1, 16, 1),   # the mnist preset's output layer
    ((16, 16), 3, 2, "same", None, 8, 3),  # the cifar10 preset's
    ((7, 7), 3, 2, "same", 0, 4, 2),
    ((5, 6), 4, 2, "same", None, 3, 2),
    ((6, 5), 5, 3, "same", None, 2, 3),
    ((8, 8), 2, 2, "same", None, 4, 1),
    ((5, 7), (3, 4), (2, 3), "same", None, 3, 2),
    ((6, 5), (5, 2), (2, 2), "same", None, 2, 2),  # a phase window of 3 rows, 1 column
    ((5, 5), 3, 2, "valid", None, 2, 1),
    ((4, 6), 3, 2, "valid", 1, 2, 2),
]


def _scatter_reference(x, kernel, strides, padding, output_size):
    """Transposed convolution as the scatter-add of its definition, cropped like TensorFlow.

    Every input pixel adds its kernel-weighted copy at `stride * position`; the
    full result is then cropped to `output_size`, dropping half of the excess
    (rounded down) at the start for "same" padding and none for "valid".
    """
    batch, height, width, _ = x.shape
    kh, kw, c_out, _ = kernel.shape
    sh, sw = strides
    full = np.zeros((batch, (height - 1) * sh + kh, (width - 1) * sw + kw, c_out))
    for i in range(height):
        for j in range(width):
            full[:, i * sh:i * sh + kh, j * sw:j * sw + kw] += np.einsum(
                "bc,hwoc->bhwo", x[:, i, j], kernel)
    out_h, out_w = output_size
    full = np.pad(full, ((0, 0), (0, max(0, out_h - full.shape[1])),
                         (0, max(0, out_w - full.shape[2])), (0, 0)))
    top = (full.shape[1] - out_h) // 2 if padding == "same" else 0
    left = (full.shape[2] - out_w) // 2 if padding == "same" else 0
    return full[:, top:top + out_h, left:left + out_w]


@pytest.mark.parametrize("size,kernel,strides,padding,output_padding,c_in,c_out", CASES)
def test_subpixel_form_equals_the_transposed_convolution(
    size, kernel, strides, padding, output_padding, c_in, c_out
):
    layer = keras.layers.Conv2DTranspose(c_out, kernel, strides=strides, padding=padding,
                                         output_padding=output_padding, use_bias=False)
    x = np.random.default_rng(0).normal(size=(3, *size, c_in)).astype("float32")
    expected = np.asarray(layer(x))  # TensorFlow's own transposed convolution
    got = np.asarray(conv_transpose_subpixel(x, layer.kernel, layer.strides, expected.shape[1:3]))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    reference = _scatter_reference(x.astype("float64"), np.asarray(layer.kernel, "float64"),
                                   layer.strides, padding, expected.shape[1:3])
    np.testing.assert_allclose(got, reference, rtol=1e-4, atol=1e-4)


def test_subpixel_form_of_a_kernel_smaller_than_its_stride_leaves_untouched_pixels_zero():
    # 1×1 kernel, stride 2: only every other pixel of every other row is written.
    kernel = np.arange(1.0, 7.0, dtype="float32").reshape(1, 1, 2, 3)
    x = np.random.default_rng(1).normal(size=(2, 3, 4, 3)).astype("float32")
    got = np.asarray(conv_transpose_subpixel(x, kernel, (2, 2), (6, 8)))
    reference = _scatter_reference(x.astype("float64"), kernel.astype("float64"), (2, 2),
                                   "same", (6, 8))
    np.testing.assert_allclose(got, reference, rtol=1e-5, atol=1e-5)
    assert not got[:, 1::2].any() and not got[:, :, 1::2].any()


@pytest.mark.parametrize(("size", "kernel", "strides", "output_size"), [
    ((6, 6), (3, 3), (2, 2), (5, 4)),
    ((6, 5), (5, 2), (2, 2), (3, 7)),
    ((5, 5), (4, 4), (3, 3), (2, 9)),
])
def test_an_output_smaller_than_any_padding_gives_is_cropped_as_the_definition_says(
        size, kernel, strides, output_size):
    # TensorFlow's transposed convolution refuses these sizes (the last input rows reach no
    # output pixel); the sub-pixel form drops the inputs it does not need and gives the
    # scatter-add cropped by TensorFlow's padding rule.
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, *size, 3)).astype("float32")
    weights = rng.normal(size=(*kernel, 2, 3)).astype("float32")
    got = np.asarray(conv_transpose_subpixel(x, weights, strides, output_size))
    reference = _scatter_reference(x.astype("float64"), weights.astype("float64"), strides,
                                   "same", output_size)
    assert got.shape == (2, *output_size, 2)
    np.testing.assert_allclose(got, reference, rtol=1e-5, atol=1e-5)


def test_the_rule_picks_strided_layers_with_few_output_channels():
    few = keras.layers.Conv2DTranspose(SUBPIXEL_MAX_CHANNELS, 3, strides=2)
    assert is_subpixel_candidate(few)
    assert not is_subpixel_candidate(keras.layers.Conv2DTranspose(SUBPIXEL_MAX_CHANNELS + 1, 3,
                                                                  strides=2))
    assert not is_subpixel_candidate(keras.layers.Conv2DTranspose(1, 3, strides=1))
    assert not is_subpixel_candidate(keras.layers.Conv3DTranspose(1, 3, strides=2))
    assert not is_subpixel_candidate(keras.layers.Conv2D(1, 3, strides=2))


@pytest.mark.parametrize("preset,overrides", [
    ("mnist", {}),
    ("cifar10", {"filters": (8, 8, 16, 16), "num_items": 20}),
])
def test_image_presets_score_through_the_subpixel_output_layer(preset, overrides):
    model = MemAE.from_preset(preset, **overrides).model
    rewritten = [layer.name for layer in model.layers if is_subpixel_candidate(layer)]
    assert rewritten == ["reconstruction"]
    output = model.get_layer("reconstruction")
    output.bias.assign(np.linspace(-0.5, 0.5, output.filters))
    view = inference_model(model)
    x = np.random.default_rng(2).random((4, *model.input_shape[1:])).astype("float32")
    np.testing.assert_allclose(view(x, training=False), model(x, training=False),
                               rtol=1e-4, atol=1e-5)


def test_subpixel_view_follows_the_kernel_variable():
    inputs = keras.Input((6, 6, 4))
    layer = keras.layers.Conv2DTranspose(1, 3, strides=2, padding="same", activation="sigmoid")
    model = keras.Model(inputs, layer(inputs))
    view = inference_model(model)
    x = np.random.default_rng(3).normal(size=(2, 6, 6, 4)).astype("float32")
    layer.kernel.assign(layer.kernel * -2.0)
    np.testing.assert_allclose(view(x), model(x), rtol=1e-5, atol=1e-6)

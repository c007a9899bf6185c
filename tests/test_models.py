"""Autoencoder builders, presets and the three ablation variants."""

import pathlib
import re

import keras
import numpy as np
import pytest

from memae_tf import MemoryLayer
from memae_tf.models import (
    PRESETS,
    build_autoencoder,
    build_conv2d_autoencoder,
    build_conv3d_autoencoder,
    build_dense_autoencoder,
    presets,
)
from memae_tf.models.activations import activation_layer
from memae_tf.models.memory_block import (
    adapt_memory,
    encode_queries,
    find_memory_layer,
    make_decoder,
    make_encoder,
    memory_bottleneck,
)

SMALL = {
    "mnist": {},
    "cifar10": {"filters": (8, 8, 8, 8), "num_items": 20},
    "video": {"input_shape": (16, 32, 32, 1), "filters": (4, 4, 8, 8), "num_items": 20},
    "kdd": {},
    "tabular": {"input_shape": (7,)},  # its width otherwise comes from MemAE's first fit
}


def memory_layers(model):
    return [layer for layer in model.layers if isinstance(layer, MemoryLayer)]


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("variant", ["memae", "memae-nonspar", "ae"])
def test_every_preset_and_variant_reconstructs_its_input_shape(preset, variant):
    model = build_autoencoder(preset, variant, **SMALL[preset])
    shape = model.input_shape[1:]
    x = np.random.rand(2, *shape).astype("float32")
    assert model(x).shape == (2, *shape)


def test_variants_differ_only_in_the_memory():
    memae = build_autoencoder("mnist", "memae")
    nonspar = build_autoencoder("mnist", "memae-nonspar")
    plain = build_autoencoder("mnist", "ae")
    (mem,), (mem_ns,) = memory_layers(memae), memory_layers(nonspar)
    assert memory_layers(plain) == []
    assert mem.effective_shrink_threshold == pytest.approx(1 / 100)
    assert mem.entropy_weight == pytest.approx(2e-4)
    assert mem_ns.shrink_threshold == 0.0 and mem_ns.entropy_weight == 0.0
    assert memae.count_params() - plain.count_params() == 100 * 16  # N items × the 16-value code
    assert nonspar.count_params() == memae.count_params()


def test_mnist_preset_follows_the_paper():
    model = build_autoencoder("mnist")
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)
             and not isinstance(layer, keras.layers.Conv2DTranspose)]
    assert [c.filters for c in convs] == [16, 32, 64]
    assert [c.kernel_size for c in convs] == [(1, 1), (3, 3), (3, 3)]
    # The 1×1 layer's stride is taken by a 1-wide pooling just before it.
    assert model.get_layer("encoder_subsample1").strides == (2, 2)
    assert [c.strides for c in convs] == [(1, 1), (2, 2), (2, 2)]
    assert model.get_layer("encoder_flatten").input.shape == (None, 4, 4, 64)
    assert model.get_layer("memory").input.shape == (None, 16)  # one global code per image
    assert memory_layers(model)[0].num_items == 100


def test_video_preset_is_the_authors_network():
    model = build_autoencoder("video")
    convs = [layer for layer in model.layers if type(layer) is keras.layers.Conv3D]
    assert [c.filters for c in convs] == [96, 128, 256, 256]
    assert [c.strides for c in convs] == [(1, 2, 2), (2, 2, 2), (2, 2, 2), (2, 2, 2)]
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert all(b.epsilon == 1e-5 and b.momentum == 0.9 for b in bns)
    assert model.get_layer("memory").input.shape == (None, 2, 16, 16, 256)
    assert memory_layers(model)[0].num_items == 2000
    assert model.output_shape == (None, 16, 256, 256, 1)
    assert model.layers[-1].activation.__name__ == "linear"


def test_kdd_preset_shrinks_below_a_quarter_of_the_uniform_weight():
    (memory,) = memory_layers(build_autoencoder("kdd"))
    assert memory.effective_shrink_threshold == pytest.approx(0.005)
    assert memory.effective_shrink_threshold < 1 / memory.num_items


def test_kdd_preset_layer_widths():
    model = build_autoencoder("kdd")
    widths = [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert widths == [60, 30, 10, 3, 10, 30, 60, 120]
    assert memory_layers(model)[0].memory.shape == (50, 3)


def test_odd_spatial_sizes_are_restored_exactly():
    model = build_conv2d_autoencoder((30, 22, 3), filters=(4, 8, 8), kernel_sizes=3)
    assert model.output_shape == (None, 30, 22, 3)
    model3 = build_conv3d_autoencoder((16, 20, 36, 1), filters=(4, 4, 4, 4), num_items=8)
    assert model3.output_shape == (None, 16, 20, 36, 1)


def test_dense_custom_shape():
    model = build_dense_autoencoder((36,), units=(16, 4), num_items=20, variant="memae")
    assert model.output_shape == (None, 36)
    assert memory_layers(model)[0].memory.shape == (20, 4)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: build_autoencoder("imagenet"), ValueError, "Received: preset='imagenet'"),
        (lambda: build_autoencoder("mnist", "vae"), ValueError,
         r"expected one of \('memae', 'memae-nonspar', 'ae'\)\. Received: variant='vae'"),
        (lambda: build_autoencoder("mnist", activation="gelu"), ValueError,
         "Received: activation='gelu'"),
        (lambda: build_autoencoder("mnist", input_shape=(28, 28)), ValueError,
         r"3 positive integers .* Received: input_shape=\(28, 28\)"),
        (lambda: build_autoencoder("kdd", input_shape=(0,)), ValueError,
         r"Received: input_shape=\(0,\)"),
        (lambda: build_autoencoder("mnist", kernel_sizes=(3, 3, 3, 3, 3)), ValueError,
         r"one entry per encoder layer \(3\)\. Received: kernel_sizes=\(3, 3, 3, 3, 3\)"),
        # An unknown keyword is Python's TypeError, with the preset named.
        (lambda: build_autoencoder("kdd", unknown_option=1), TypeError,
         "Invalid override for preset 'kdd': .* 'unknown_option'"),
    ],
)
def test_bad_builder_arguments_raise_clear_errors(call, error, message):
    with pytest.raises(error, match=message) as raised:
        call()
    assert type(raised.value) is error


@pytest.mark.parametrize("shape", [(28, 28, 1), (27, 13, 2)])
def test_subsampled_pointwise_conv_equals_a_strided_pointwise_conv(shape):
    model = build_conv2d_autoencoder(shape, filters=(4, 8), kernel_sizes=(1, 3))
    ours = keras.Model(model.input, model.get_layer("encoder_conv1").output)
    reference = keras.layers.Conv2D(4, 1, strides=2, padding="same", use_bias=False)
    reference.build((None, *shape))
    reference.set_weights(model.get_layer("encoder_conv1").get_weights())
    x = np.random.default_rng(0).normal(size=(2, *shape)).astype("float32")
    np.testing.assert_allclose(ours(x), reference(x), rtol=1e-5, atol=1e-6)


def test_a_memory_override_that_contradicts_the_variant_is_refused():
    with pytest.raises(ValueError, match=r"variant='memae', memory='ae'"):
        build_autoencoder("kdd", "memae", memory="ae")


def test_a_memory_override_equal_to_the_variant_is_deprecated_and_harmless():
    with pytest.warns(DeprecationWarning, match="`memory` argument is now called `variant`"):
        model = build_autoencoder("kdd", "ae", memory="ae", input_shape=(6,), units=(4, 2))
    assert not memory_layers(model)


@pytest.mark.parametrize("builder, kwargs", [
    (build_dense_autoencoder, {"input_shape": (6,), "units": (4, 2)}),
    (build_conv2d_autoencoder, {"input_shape": (8, 8, 1), "filters": (4, 6), "kernel_sizes": 3}),
])
def test_the_builders_deprecated_memory_keyword_still_chooses_the_variant(builder, kwargs):
    with pytest.warns(DeprecationWarning, match="now called `variant`"):
        model = builder(**kwargs, memory="ae")
    assert not memory_layers(model)
    with pytest.raises(ValueError, match="Received: variant='memae-nonspar', memory='ae'"), \
            pytest.warns(DeprecationWarning):
        builder(**kwargs, variant="memae-nonspar", memory="ae")


@pytest.mark.parametrize(("name", "expected"), [
    ("leaky_relu", [-0.2, 0.0, 2.0]),  # slope 0.2 below zero
    ("relu", [0.0, 0.0, 2.0]),
    ("tanh", np.tanh([-1.0, 0.0, 2.0])),
    ("elu", [np.exp(-1.0) - 1.0, 0.0, 2.0]),
])
def test_hidden_activations_compute_their_functions(name, expected):
    layer = activation_layer(name, "hidden_1")
    assert layer.name == "hidden_1"
    values = keras.ops.convert_to_numpy(layer(np.array([[-1.0, 0.0, 2.0]], np.float32)))
    np.testing.assert_allclose(values[0], expected, rtol=1e-6)


def _guide_presets() -> dict[str, dict[str, str]]:
    """The preset table of docs/guides/keras.md: name -> its data, network, memory cells."""
    guide = (pathlib.Path(__file__).parents[1] / "docs/guides/keras.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| (.+?) \| (.+?) \| (.+?) \|$", guide, re.MULTILINE)
    return {name: {"data": data, "network": network, "memory": memory}
            for name, data, network, memory in rows}


def test_the_presets_are_those_the_keras_guide_describes():
    # The guide's table is what users read to pick a preset: each stated shape, range,
    # layer widths, activation, memory size, shrinkage and score holds for the presets
    # that get_preset reads (the module's own PRESETS).
    table = _guide_presets()
    assert set(table) == set(presets.PRESETS)
    activations = {"BN+ReLU": "relu", "BN+LeakyReLU": "leaky_relu", "tanh": "tanh"}
    for name, cells in table.items():
        preset, data = presets.PRESETS[name], cells["data"]
        if shape := re.search(r"(\d+)×(\d+)×(\d+) images", data):
            assert preset.kwargs["input_shape"] == tuple(map(int, shape.groups())), name
        if clip := re.search(r"(\d+)-frame (\d+)×(\d+) clips", data):
            assert preset.kwargs["input_shape"] == (*map(int, clip.groups()), 1), name
        if value_range := re.search(r"in \[(-?\d+), (-?\d+)\]", data):
            assert preset.input_range == tuple(map(float, value_range.groups())), name
        if widths := re.search(r"(?:Conv2D|Conv3D|Dense) ([\d-]+\d)", cells["network"]):
            layers = preset.kwargs.get("filters") or preset.kwargs["units"]
            assert layers == tuple(map(int, widths.group(1).split("-"))), name
        named = [act for word, act in activations.items() if word in cells["network"]]
        assert named in ([], [preset.kwargs.get("activation")]), name
        items = re.search(r"([\d,]+) items", cells["memory"]).group(1)
        assert preset.kwargs["num_items"] == int(items.replace(",", "")), name
        if shrink := re.search(r"λ = ([\d.]+)", cells["memory"]):
            assert preset.kwargs["shrink_threshold"] == float(shrink.group(1)), name
        assert (preset.error == "ssim") == ("1 − SSIM" in cells["network"]), name
        assert (preset.kwargs.get("similarity") == "euclidean") == (
            "by distance" in cells["memory"]), name
        if code := re.search(r"global (\d+)-value code", cells["network"]):
            assert (preset.kwargs["latent"], preset.kwargs["latent_dim"]) == (
                "global", int(code.group(1))), name


def test_a_preset_cannot_be_changed_in_place():
    # Every detector built from a preset shares the one Preset object.
    with pytest.raises(AttributeError):
        presets.PRESETS["mnist"].input_range = (0.0, 1.0)


# ------------------------------------------------------ the memory block (memory_block.py)


def test_the_memae_bottleneck_defaults_to_the_papers_entropy_weight():
    # Gong et al. (ICCV 2019) set the entropy loss weight α = 0.0002 and λ = 1/N (as
    # MemoryLayer's docstring says): the builders' bottleneck takes them by default.
    z = keras.Input((4,))
    layer = find_memory_layer(keras.Model(z, memory_bottleneck(z, "memae", 5)))
    assert layer.entropy_weight == 2e-4
    assert layer.effective_shrink_threshold == pytest.approx(1 / 5)


def test_a_memory_in_a_nested_model_is_found_but_not_split_off():
    # make_encoder / make_decoder take only a memory that is a direct layer, and
    # adapt_memory then sets no item (their docstrings).
    inner = build_dense_autoencoder((8,), units=(6, 3), num_items=5)
    x = keras.Input((8,))
    outer = keras.Model(x, inner(keras.Sequential([keras.layers.Dense(8)])(x)))
    assert find_memory_layer(outer) is inner.get_layer("memory")
    samples = np.random.default_rng(0).random((4, 8), dtype=np.float32)
    assert (make_encoder(outer), make_decoder(outer), encode_queries(outer, samples)) == (
        None, None, None)
    assert adapt_memory(outer, samples, seed=0) == 0
    plain = build_dense_autoencoder((8,), units=(6, 3), variant="ae")
    assert (find_memory_layer(plain), make_encoder(plain), make_decoder(plain)) == (
        None, None, None)


def test_the_queries_of_a_sample_do_not_depend_on_its_batch_in_inference_mode():
    # encode_queries' docstring: batch normalisation uses its moving statistics unless
    # training=True, when it uses the batch's (Keras' BatchNormalization).
    model = build_conv2d_autoencoder((8, 8, 1), filters=(4, 6), kernel_sizes=3, num_items=5)
    samples = np.random.default_rng(0).random((6, 8, 8, 1), dtype=np.float32)
    alone = encode_queries(model, samples[:1])
    np.testing.assert_allclose(encode_queries(model, samples)[:1], alone, atol=1e-6)
    trained = encode_queries(model, samples, training=True)[:1]
    assert np.abs(trained - encode_queries(model, samples[:1], training=True)).max() > 1e-3

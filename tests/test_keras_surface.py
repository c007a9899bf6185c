"""The private Keras surface that memae_tf relies on, pinned to what was tested.

`memae_tf.distribute` overrides `Model._maybe_symbolic_build` (multi-worker
training), `memae_tf.models.bn_folding` reads the serialised graph of a
functional model (`inbound_nodes`, `keras_history`, `output_layers`) and
`memae_tf.training.fused_adam` replaces `Adam.update_step` and reads Adam's
slots (`_momentums`, `_velocities`, `_get_variable_index`). None is
public API; when a Keras release changes them these tests fail by name, instead
of multi-worker training breaking or batch-norm folding silently turning off.
"""

import importlib.metadata
import inspect
import pathlib
import tomllib

import keras
from packaging.requirements import Requirement

from memae_tf import distribute
from memae_tf.models import bn_folding

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _keras_requirement() -> Requirement:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return next(Requirement(d) for d in dependencies if Requirement(d).name == "keras")


def test_installed_keras_is_within_the_pinned_range():
    requirement = _keras_requirement()
    installed = importlib.metadata.version("keras")
    assert requirement.specifier.contains(installed), (
        f"Keras {installed} is outside the tested range {requirement.specifier}: check "
        "the private surface below, then widen the pin in pyproject.toml"
    )


def test_the_pin_admits_one_minor_release_only():
    # Private APIs may change in any minor release: widen only after testing it.
    specifiers = {(s.operator, s.version) for s in _keras_requirement().specifier}
    lower = next(v for op, v in specifiers if op == ">=")
    upper = next(v for op, v in specifiers if op == "<")
    major, minor = (int(p) for p in lower.split(".")[:2])
    assert upper == f"{major}.{minor + 1}", specifiers


def test_the_symbolic_build_hook_overridden_for_multi_worker_training_exists():
    hook = getattr(keras.Model, "_maybe_symbolic_build", None)
    assert hook is not None, "keras.Model._maybe_symbolic_build is gone (see distribute.py)"
    parameters = list(inspect.signature(hook).parameters)
    assert parameters == ["self", "iterator", "data_batch"], parameters
    override = inspect.signature(distribute._MultiWorkerModel._maybe_symbolic_build)
    assert list(override.parameters) == parameters


def test_compute_loss_takes_the_arguments_the_replica_model_forwards():
    parameters = list(inspect.signature(keras.Model.compute_loss).parameters)
    assert parameters[:6] == ["self", "x", "y", "y_pred", "sample_weight", "training"]


def _conv_bn_model() -> keras.Model:
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="norm")(x)
    outputs = keras.layers.Conv2D(1, 1, name="out")(keras.layers.ReLU(name="relu")(x))
    return keras.Model(inputs, outputs)


def test_the_serialised_functional_graph_has_the_shape_bn_folding_reads():
    config = _conv_bn_model().get_config()
    entries = {entry["name"]: entry for entry in config["layers"]}
    (node,) = entries["norm"]["inbound_nodes"]
    assert bn_folding._input_layer_names(node) == ["conv"]
    assert config["output_layers"][0] == "out"  # one output: [name, node, tensor]
    assert bn_folding.output_layer_names(_conv_bn_model()) == {"out"}


def test_batch_norm_is_actually_folded():
    # inference_model returns the model unchanged when it cannot read the graph:
    # that fallback must not be what happens on the pinned Keras.
    model = _conv_bn_model()
    assert bn_folding._foldable_pairs(model) == {"conv": "norm"}
    view = bn_folding.inference_model(model)
    assert view is not model
    assert "norm" not in {layer.name for layer in view.layers}


def test_the_adam_internals_the_fused_update_reads_exist():
    parameters = list(inspect.signature(keras.optimizers.Adam.update_step).parameters)
    assert parameters == ["self", "gradient", "variable", "learning_rate"], parameters
    optimizer = keras.optimizers.Adam()
    variable = keras.Variable([1.0, 2.0])
    optimizer.build([variable])
    index = optimizer._get_variable_index(variable)
    assert optimizer._momentums[index].shape == optimizer._velocities[index].shape == (2,)

"""`fused_adam`: Adam's rule in one kernel per variable, saved and loaded as Keras' Adam."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from memae_tf.training.fused_adam import fused_adam


def numpy_adam(weights, gradients, learning_rates, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """Adam (Kingma & Ba, with Keras' placement of ε) in float64, step by step."""
    weights = [w.astype(np.float64) for w in weights]
    m = [np.zeros_like(w) for w in weights]
    v = [np.zeros_like(w) for w in weights]
    for t, (step_gradients, rate) in enumerate(zip(gradients, learning_rates, strict=True), 1):
        alpha = rate * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
        for i, g in enumerate(step_gradients):
            m[i] += (g - m[i]) * (1 - beta_1)
            v[i] += (g * g - v[i]) * (1 - beta_2)
            weights[i] -= m[i] * alpha / (np.sqrt(v[i]) + epsilon)
    return weights, m, v


def _train(optimizer, weights, gradients):
    variables = [keras.Variable(w) for w in weights]

    @tf.function
    def step(step_gradients):
        optimizer.apply_gradients(zip(step_gradients, variables, strict=True))

    for step_gradients in gradients:
        step([tf.constant(g) for g in step_gradients])
    return [keras.ops.convert_to_numpy(v) for v in variables], step


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=(5, 4)).astype("float32"), rng.normal(size=(4,)).astype("float32")]
    gradients = [[rng.normal(size=w.shape).astype("float32") for w in weights]
                 for _ in range(25)]
    return weights, gradients


def test_updates_follow_adams_rule(problem):
    weights, gradients = problem
    optimizer = fused_adam(1e-2)
    trained, _ = _train(optimizer, weights, gradients)
    expected, m, v = numpy_adam(weights, [[g.astype(np.float64) for g in s] for s in gradients],
                                [1e-2] * len(gradients))
    for got, want in zip(trained, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        assert np.abs(got - weights[0 if got.ndim == 2 else 1]).max() > 0.05  # it moved
    momentums = [keras.ops.convert_to_numpy(x) for x in optimizer._momentums]
    velocities = [keras.ops.convert_to_numpy(x) for x in optimizer._velocities]
    for got, want in zip(momentums + velocities, m + v, strict=True):
        # 25 float32 moving averages: up to ~1e-5 relative drift from float64.
        np.testing.assert_allclose(got, want, rtol=5e-5, atol=1e-7)


def test_a_learning_rate_schedule_is_read_at_every_step(problem):
    weights, gradients = problem
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-2, decay_steps=5, decay_rate=0.5)
    trained, _ = _train(fused_adam(schedule), weights, gradients)
    rates = [1e-2 * 0.5 ** (step / 5) for step in range(len(gradients))]
    expected, _, _ = numpy_adam(weights, gradients, rates)
    for got, want in zip(trained, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_each_variable_is_updated_by_one_fused_kernel(problem):
    weights, gradients = problem
    _, step = _train(fused_adam(), weights, gradients[:1])
    graph = step.get_concrete_function(
        [tf.TensorSpec(w.shape, tf.float32) for w in weights]).graph
    kinds = [op.type for op in graph.get_operations()]
    assert kinds.count("ResourceApplyAdam") == len(weights)


def test_amsgrad_keeps_keras_update(problem):
    weights, gradients = problem
    fused, _ = _train(fused_adam(1e-2, amsgrad=True), weights, gradients)
    plain, _ = _train(keras.optimizers.Adam(1e-2, amsgrad=True), weights, gradients)
    for a, b in zip(fused, plain, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_model_compiled_with_it_saves_and_loads_as_keras_adam(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=fused_adam(3e-3), loss="mse")
    model.fit(np.ones((8, 3), "float32"), np.zeros((8, 2), "float32"), epochs=1, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert type(loaded.optimizer) is keras.optimizers.Adam
    assert loaded.optimizer.learning_rate.numpy() == pytest.approx(3e-3)


def test_its_defaults_are_keras_adams():
    # "The same rule, arguments, variables and state as keras.optimizers.Adam": a caller
    # who names no learning rate gets Keras' default, as with Adam().
    keras_config, config = keras.optimizers.Adam().get_config(), fused_adam().get_config()
    for name in ("learning_rate", "beta_1", "beta_2", "epsilon", "amsgrad"):
        assert config[name] == keras_config[name], name

"""`lr_decay`: the rate of every step, its reset, the default, and where the option is accepted."""

import math

import keras
import numpy as np
import pytest

from memae_tf import MemAE
from memae_tf.cli import build_parser
from memae_tf.evaluation.cli import config_from_args
from memae_tf.models import build_conv3d_autoencoder
from memae_tf.training import CosineLearningRateDecay, TrainingConfig, cosine_rate

TINY_DENSE = {"input_shape": (8,), "units": (6, 3), "num_items": 10}
ROWS = np.random.default_rng(0).uniform(size=(128, 8)).astype("float32")  # 4 batches of 32


class RateRecorder(keras.callbacks.Callback):
    """The optimizer's rate as each train-function call begins (after the decay's update)."""

    def __init__(self):
        super().__init__()
        self.rates = []

    def on_train_batch_begin(self, batch, logs=None):
        self.rates.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))


def fit(detector, recorder, **settings):
    settings = {"epochs": 3, "batch_size": 32, "learning_rate": 1e-2, "verbose": 0,
                "steps_per_execution": 1, "seed": 0, **settings}
    return detector.fit(ROWS, callbacks=[recorder], **settings)


def test_every_step_runs_at_the_half_cosine_rate_and_the_rate_is_reset_after():
    detector = MemAE.from_preset("kdd", **TINY_DENSE)
    recorder = RateRecorder()
    history = fit(detector, recorder, lr_decay="cosine")
    steps = 3 * 4
    expected = [1e-2 * (1 + np.cos(np.pi * k / steps)) / 2 for k in range(steps)]
    np.testing.assert_allclose(recorder.rates, expected, rtol=1e-5)
    # The History holds the rate each epoch ended with (its last step's).
    np.testing.assert_allclose(history.history["learning_rate"], expected[3::4], rtol=1e-5)
    # A later call without decay trains at the configured rate again (no re-compile).
    recorder.rates.clear()
    fit(detector, recorder, epochs=1, lr_decay="none")
    np.testing.assert_allclose(recorder.rates, [1e-2] * 4, rtol=1e-6)


def test_a_continued_fit_decays_again_from_the_base_rate():
    detector = MemAE.from_preset("kdd", **TINY_DENSE)
    recorder = RateRecorder()
    fit(detector, recorder, epochs=1, lr_decay="cosine")
    fit(detector, recorder, epochs=1, lr_decay="cosine")
    one_call = [1e-2 * (1 + np.cos(np.pi * k / 4)) / 2 for k in range(4)]
    np.testing.assert_allclose(recorder.rates, one_call * 2, rtol=1e-5)


def test_with_several_steps_per_call_the_rate_changes_once_per_call():
    detector = MemAE.from_preset("kdd", **TINY_DENSE)
    recorder = RateRecorder()
    fit(detector, recorder, epochs=2, lr_decay="cosine", steps_per_execution=2)
    expected = [1e-2 * (1 + np.cos(np.pi * k / 8)) / 2 for k in (0, 2, 4, 6)]
    np.testing.assert_allclose(recorder.rates, expected, rtol=1e-5)


def test_the_decayed_rate_is_the_rate_the_optimizer_applies():
    # Same start, same batches. The reference is Keras' own CosineDecay schedule, which Adam
    # evaluates at each step inside the train step: the half cosine over the 8 steps.
    weights = {}
    for name, settings in (("none", {"lr_decay": "none"}), ("cosine", {"lr_decay": "cosine"}),
                           ("schedule", {"learning_rate": keras.optimizers.schedules.CosineDecay(
                               1e-2, decay_steps=2 * 4)})):
        keras.utils.set_random_seed(1)
        detector = MemAE.from_preset("kdd", **TINY_DENSE)
        fit(detector, RateRecorder(), epochs=2, **settings)
        weights[name] = np.concatenate([w.ravel() for w in detector.model.get_weights()])
    np.testing.assert_allclose(weights["cosine"], weights["schedule"], rtol=1e-5, atol=1e-6)
    assert not np.allclose(weights["none"], weights["schedule"], rtol=1e-3)


def test_the_callback_works_in_a_plain_keras_fit():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    x = np.zeros((8, 2), "float32")
    history = model.fit(x, x[:, :1], epochs=2, batch_size=4, verbose=0,
                        callbacks=[CosineLearningRateDecay(1e-2)])
    ends = [1e-2 * (1 + math.cos(math.pi * k / 4)) / 2 for k in (1, 3)]
    np.testing.assert_allclose(history.history["learning_rate"], ends, rtol=1e-5)
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(1e-2)


@pytest.mark.parametrize("progress", [0.0, 0.25, 1.0, 1.5, 4.0])
def test_past_the_end_the_rate_stays_zero_as_keras_cosine_decay_does(progress):
    # Keras' CosineDecay holds its last value once the step passes decay_steps.
    reference = keras.optimizers.schedules.CosineDecay(1e-2, decay_steps=100)
    expected = float(keras.ops.convert_to_numpy(reference(progress * 100)))
    assert cosine_rate(1e-2, progress) == pytest.approx(expected, rel=1e-5, abs=1e-9)


@pytest.mark.parametrize("rate", [0.0, -1e-3, True, "1e-3"])
def test_the_callback_needs_a_positive_rate(rate):
    with pytest.raises(ValueError, match="base_rate"):
        CosineLearningRateDecay(rate)


def test_an_unknown_decay_and_a_decayed_schedule_are_refused():
    with pytest.raises(ValueError, match=r"lr_decay.*'auto', 'cosine', 'none'.*'step'"):
        TrainingConfig(lr_decay="step")
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, 100, 0.5)
    with pytest.raises(ValueError, match="LearningRateSchedule brings its own"):
        TrainingConfig(learning_rate=schedule, lr_decay="cosine")


def test_by_default_a_float_rate_decays_and_a_schedule_runs_as_given():
    assert TrainingConfig().decays((8,)) and TrainingConfig(lr_decay="cosine").decays((8,))
    assert not TrainingConfig(lr_decay="none").decays((8,))
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-2, 1, 0.5)
    assert not TrainingConfig(learning_rate=schedule).decays((8,))
    detector = MemAE.from_preset("kdd", **TINY_DENSE)
    recorder = RateRecorder()
    detector.fit(ROWS, epochs=1, batch_size=32, learning_rate=1e-2, verbose=0,
                 steps_per_execution=1, callbacks=[recorder])  # the user's call
    np.testing.assert_allclose(recorder.rates,
                               [1e-2 * (1 + np.cos(np.pi * k / 4)) / 2 for k in range(4)],
                               rtol=1e-5)


def test_by_default_clips_train_at_a_constant_rate_unless_told():
    clips = np.random.default_rng(0).uniform(-1, 1, (8, 4, 8, 8, 1)).astype("float32")
    for decay in ("auto", "cosine"):
        model = build_conv3d_autoencoder((4, 8, 8, 1), filters=(2, 2), strides=2,
                                         num_items=4, output_activation=None)
        recorder = RateRecorder()
        MemAE(model, input_range=(-1, 1)).fit(
            clips, epochs=2, batch_size=4, learning_rate=1e-2, lr_decay=decay, verbose=0,
            steps_per_execution=1, seed=0, callbacks=[recorder])
        expected = ([1e-2] * 4 if decay == "auto"  # clips: constant, as chosen on video
                    else [1e-2 * (1 + np.cos(np.pi * k / 4)) / 2 for k in range(4)])
        np.testing.assert_allclose(recorder.rates, expected, rtol=1e-5)


def test_the_commands_pass_the_decay_on():
    parser = build_parser()
    train = parser.parse_args(["train", "--data", "x.npy", "--out", "o"])
    assert train.lr_decay == "auto"
    assert parser.parse_args(["train", "--data", "x.npy", "--lr-decay", "none",
                              "--out", "o"]).lr_decay == "none"
    config = config_from_args(parser.parse_args(["experiment", "mnist", "--out", "o"]))
    assert config.lr_decay == "auto" and config.training().decays((28, 28, 1))
    assert not config.training().decays((16, 64, 64, 1))
    experiment = parser.parse_args(["experiment", "mnist", "--lr-decay", "none", "--out", "o"])
    assert not config_from_args(experiment).training().decays((28, 28, 1))
    with pytest.raises(SystemExit):
        parser.parse_args(["experiment", "mnist", "--lr-decay", "linear", "--out", "o"])

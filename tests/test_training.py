"""One `TrainingConfig` for `MemAE.fit`, `memae train` and the experiments."""

import dataclasses

import keras
import numpy as np
import pytest

from memae_tf import MemAE
from memae_tf.evaluation import TrainingConfig as ExperimentTrainingConfig
from memae_tf.training import TrainingConfig

TINY_DENSE = {"input_shape": (8,), "units": (6, 3), "num_items": 10}


@pytest.fixture(scope="module")
def rows():
    return np.random.default_rng(0).uniform(size=(128, 8)).astype("float32")


def test_the_experiments_train_with_the_same_config_class():
    assert ExperimentTrainingConfig is TrainingConfig


def test_fit_with_a_config_trains_like_fit_with_the_same_keywords(rows):
    histories = []
    for call in ({"config": TrainingConfig(epochs=2, batch_size=32, seed=3, verbose=0)},
                 {"epochs": 2, "batch_size": 32, "seed": 3, "verbose": 0}):
        keras.utils.set_random_seed(1)
        detector = MemAE.from_preset("kdd", **TINY_DENSE)
        histories.append(detector.fit(rows, **call).history["loss"])
    np.testing.assert_allclose(histories[0], histories[1], rtol=1e-6)


def test_keywords_replace_the_fields_of_a_given_config(rows):
    detector = MemAE.from_preset("kdd", **TINY_DENSE)
    history = detector.fit(rows, config=TrainingConfig(epochs=3, verbose=0), epochs=1)
    assert len(history.history["loss"]) == 1


def test_an_unknown_training_setting_is_named_with_the_known_ones(rows):
    with pytest.raises(TypeError, match=r"\['epoch'\].*'epochs'"):
        MemAE.from_preset("kdd", **TINY_DENSE).fit(rows, epoch=1)


@pytest.mark.parametrize(
    "settings, message",
    [({"epochs": 0}, "epochs"), ({"batch_size": True}, "batch_size"),
     ({"steps_per_execution": 0}, "steps_per_execution"),
     ({"learning_rate": -1.0}, "learning_rate"), ({"learning_rate": 0.0}, "learning_rate"),
     ({"memory_init": "random"}, "memory_init"), ({"precision": "float16"}, "precision"),
     ({"strategy": "tpu"}, "strategy")],
)
def test_a_config_out_of_range_is_refused_when_built(settings, message):
    with pytest.raises(ValueError, match=message):
        TrainingConfig(**settings)


def test_numpy_integers_are_valid_sizes():
    assert TrainingConfig(epochs=np.int64(2), batch_size=np.int32(16)).epochs == 2


def test_the_settings_documented_as_defaults_are_the_defaults():
    # TrainingConfig's docstring: memory_restart "Off by default", shuffle every epoch,
    # lr_decay and jit_compile "auto" (default), memory_init drawn from the data.
    config = TrainingConfig()
    assert (config.memory_restart, config.shuffle, config.lr_decay, config.jit_compile,
            config.memory_init) == (False, True, "auto", "auto", "data")


def test_has_schedule_is_a_bool_for_a_rate_and_for_a_schedule():
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, 100, 0.5)
    assert TrainingConfig(learning_rate=1e-3).has_schedule is False
    assert TrainingConfig(learning_rate=schedule).has_schedule is True


def test_the_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainingConfig().epochs = 3

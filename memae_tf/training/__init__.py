"""Training of an autoencoder on normal data: one settings object, one trainer.

`TrainingConfig` holds every setting of a run (what `MemAE.fit` takes, what
`memae train` and the experiments build); `Trainer` runs it on a model and keeps
the compiled state between calls; `initialise_memory` draws the memory items
from training encodings before the first run; `MemoryCollapseCheck` counts
the items used after every epoch, warns when the addressing collapsed (or left
most queries with no weight) and can draw the items again; `CosineLearningRateDecay` is the decay of
`lr_decay="cosine"`.
"""

from memae_tf.training.config import TrainingConfig
from memae_tf.training.memory_check import MemoryCollapseCheck, empty_query_share, items_used
from memae_tf.training.memory_init import initialise_memory, memory_samples
from memae_tf.training.schedules import CosineLearningRateDecay, cosine_rate
from memae_tf.training.trainer import Trainer

__all__ = ["CosineLearningRateDecay", "MemoryCollapseCheck", "Trainer", "TrainingConfig",
           "cosine_rate", "empty_query_share", "initialise_memory", "items_used",
           "memory_samples"]

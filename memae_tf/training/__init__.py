"""Training of an autoencoder on normal data: one settings object, one trainer.

`TrainingConfig` holds every setting of a run (what `MemAE.fit` takes, what
`memae train` and the experiments build); `Trainer` runs it on a model and keeps
the compiled state between calls; `initialise_memory` draws the memory items
from training encodings before the first run; `MemoryRestart` draws them again
when the addressing collapses during training.
"""

from memae_tf.training.config import TrainingConfig
from memae_tf.training.memory_init import initialise_memory, memory_samples
from memae_tf.training.memory_restart import MemoryRestart, items_used
from memae_tf.training.trainer import Trainer

__all__ = ["MemoryRestart", "Trainer", "TrainingConfig", "initialise_memory", "items_used",
           "memory_samples"]

"""Training of an autoencoder on normal data: one settings object, one trainer.

`TrainingConfig` holds every setting of a run (what `MemAE.fit` takes, what
`memae train` and the experiments build); `Trainer` runs it on a model and keeps
the compiled state between calls; `memory_samples` picks the training samples
whose encodings the memory items are drawn from before the first run; `MemoryCollapseCheck` counts
the items used after every epoch, warns when the addressing collapsed (or left
most queries with no weight) and can draw the items again; `CosineLearningRateDecay` is the decay of
`lr_decay="cosine"`.
"""

from memae_tf._lazy import lazy_exports

# Imported on first use: `memae_tf.training.config` (the defaults the command line
# shows) stays free of TensorFlow.
__getattr__, __all__ = lazy_exports(__name__, {
    ".config": ["TrainingConfig"],
    ".memory_check": ["MemoryCollapseCheck", "empty_query_share", "items_used"],
    ".memory_init": ["memory_samples"],
    ".schedules": ["CosineLearningRateDecay", "cosine_rate"],
    ".trainer": ["Trainer"],
})

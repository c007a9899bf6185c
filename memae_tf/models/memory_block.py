"""The three bottleneck variants of the paper's ablation: MemAE, MemAE-nonSpar, AE."""

from __future__ import annotations

from memae_tf.layers.memory import MemoryLayer

VARIANTS = ("memae", "memae-nonspar", "ae")
MEMORY_LAYER_NAME = "memory"


def check_variant(memory: str) -> str:
    """Returns `memory` if it names a known variant, else raises a ValueError."""
    if memory not in VARIANTS:
        raise ValueError(
            f"Received an invalid value for `memory`, expected one of {VARIANTS}. "
            f"Received: memory={memory!r}"
        )
    return memory


def memory_bottleneck(
    z,
    memory: str,
    num_items: int,
    shrink_threshold: float | None = None,
    entropy_weight: float = 2e-4,
    similarity: str = "dot",
):
    """Applies the bottleneck of the chosen variant to the encoding `z`.

    - `"memae"`: `MemoryLayer` with hard shrinkage (λ = `shrink_threshold`, None
      meaning 1/N) and the entropy loss weighted by `entropy_weight`.
    - `"memae-nonspar"`: `MemoryLayer` with λ = 0 and no entropy loss.
    - `"ae"`: identity (a plain autoencoder).

    Args:
        z: Symbolic encoder output, rank 2, 4 or 5.
        memory: Variant name, one of `VARIANTS`.
        num_items: Memory size N (ignored for `"ae"`).
        shrink_threshold: λ for `"memae"`.
        entropy_weight: Entropy loss weight for `"memae"`.
        similarity: `"dot"` or `"cosine"` addressing.

    Returns:
        The symbolic latent passed to the decoder, shaped like `z`.
    """
    check_variant(memory)
    if memory == "ae":
        return z
    if memory == "memae-nonspar":
        shrink_threshold, entropy_weight = 0.0, 0.0
    layer = MemoryLayer(
        num_items,
        shrink_threshold=shrink_threshold,
        entropy_weight=entropy_weight,
        similarity=similarity,
        name=MEMORY_LAYER_NAME,
    )
    return layer(z)

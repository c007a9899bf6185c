"""The float64 NumPy re-derivation of MemoryLayer's formulas (Gong et al., ICCV 2019).

Shared by the layer's tests on every Keras backend; imports NumPy only, so a
worker running under `KERAS_BACKEND=jax` or `torch` can use it.
"""

import numpy as np


def numpy_memory(z, memory, threshold, similarity):
    """Reference: per-row softmax addressing, hard shrinkage, L1 renorm, readout."""
    flat = z.reshape(-1, z.shape[-1]).astype(np.float64)
    mem = memory.astype(np.float64)
    if similarity == "cosine":
        flat = flat / np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-12)
        mem = mem / np.maximum(np.linalg.norm(mem, axis=1, keepdims=True), 1e-12)
    logits = flat @ mem.T
    if similarity == "euclidean":  # the negative mean squared difference, all terms kept
        logits = -((flat[:, None, :] - mem[None, :, :]) ** 2).mean(axis=-1)
    logits -= logits.max(axis=1, keepdims=True)
    w = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    if threshold > 0:
        w = np.maximum(w - threshold, 0.0) * w / (np.abs(w - threshold) + 1e-12)
        w = w / np.maximum(np.abs(w).sum(axis=1, keepdims=True), 1e-12)
    out = w @ memory.astype(np.float64)
    entropy = np.mean(np.sum(-w * np.log(w + 1e-12), axis=1))
    return out.reshape(z.shape), w.reshape(*z.shape[:-1], -1), entropy

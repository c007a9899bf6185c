"""Eager PyTorch reference of the MNIST preset, for the speed comparison.

The network mirrors `build_autoencoder("mnist", "memae")` layer for layer:
Conv(16, 1×1, s2) (the preset's 1-wide subsampling then 1×1 convolution) →
BN → ReLU → Conv(32, 3×3, s2) → BN → ReLU → Conv(64, 3×3, s2) → BN → ReLU →
flatten → Linear(1024 → 16) (the global code) → memory (100 items, λ = 1/100,
dot addressing, entropy loss 2e-4; one query per sample) → Linear(16 → 1024)
→ BN → ReLU → 4×4×64 → ConvT(32, 3×3, s2) → BN → ReLU → ConvT(16, 3×3, s2) →
BN → ReLU → ConvT(1, 3×3, s2), linear output (the decoder widens a kernel smaller
than its stride), with the same feature-map sizes (28 → 14 → 7 → 4 → 7 → 14
→ 28), the same parameter count and FLOPs, trained with Adam (lr 1e-3) on MSE
+ entropy and scored by 1 − SSIM (the preset's `error="ssim"`: 11×11 Gaussian
window, σ = 1.5, mirrored borders, images in [-1, 1]).
PyTorch pads "same" convolutions symmetrically where TensorFlow pads the
bottom/right first, and flattens channels first where Keras flattens channels
last; that shifts the sampling grid by one pixel and permutes the code's
inputs, and changes no cost.

Requires the optional `bench` extra (`pip install torch==2.13.0`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from memae_tf.scoring_graph import ssim_blur_matrix

_EPSILON = 1e-12


class Memory(nn.Module):
    """MemAE memory on `(n, C)` queries: softmax addressing, hard shrinkage, L1 renormalisation."""

    def __init__(self, num_items: int, channels: int, entropy_weight: float = 2e-4) -> None:
        super().__init__()
        limit = 1.0 / math.sqrt(channels)
        self.memory = nn.Parameter(torch.empty(num_items, channels).uniform_(-limit, limit))
        self.threshold = 1.0 / num_items
        self.entropy_weight = entropy_weight

    def forward(self, queries: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weights = torch.softmax(queries @ self.memory.t(), dim=-1)
        shifted = weights - self.threshold
        weights = torch.relu(shifted) * weights / (shifted.abs() + _EPSILON)
        weights = weights / weights.abs().sum(dim=-1, keepdim=True).clamp_min(_EPSILON)
        entropy = (-weights * torch.log(weights + _EPSILON)).sum(dim=-1).mean()
        return weights @ self.memory, self.entropy_weight * entropy


def _block(layer: nn.Module, channels: int, norm: type = nn.BatchNorm2d) -> nn.Sequential:
    # Keras BatchNormalization(momentum=0.9, epsilon=1e-5) is torch momentum 0.1.
    return nn.Sequential(layer, norm(channels, eps=1e-5, momentum=0.1), nn.ReLU())


class MemAEMnist(nn.Module):
    """The MNIST-preset MemAE in PyTorch (NCHW)."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            _block(nn.Conv2d(1, 16, 1, stride=2, bias=False), 16),
            _block(nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False), 32),
            _block(nn.Conv2d(32, 64, 3, stride=2, padding=1, bias=False), 64),
            nn.Flatten(),
            nn.Linear(1024, 16),
        )
        self.memory = Memory(100, 16)
        self.decoder = nn.Sequential(
            _block(nn.Linear(16, 1024, bias=False), 1024, nn.BatchNorm1d),
            nn.Unflatten(1, (64, 4, 4)),
            _block(nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, bias=False), 32),
            _block(nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1,
                                      bias=False), 16),
            nn.ConvTranspose2d(16, 1, 3, stride=2, padding=1, output_padding=1),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rebuilt, entropy = self.memory(self.encoder(x))
        return self.decoder(rebuilt), entropy


def _ssim_map(x: torch.Tensor, y: torch.Tensor, value_range: float) -> torch.Tensor:
    """Local SSIM per pixel (NCHW), as the package computes it: the five local moments
    blurred in one pass by matrix products with the mirrored-border Gaussian matrix."""
    height, width = x.shape[2], x.shape[3]
    rows = _as_tensor(ssim_blur_matrix(height))
    columns = _as_tensor(ssim_blur_matrix(width))
    stacked = torch.cat([x, y, x * x, y * y, x * y])
    blurred = rows @ stacked @ columns.T
    mu_x, mu_y, xx, yy, xy = blurred.chunk(5)
    c1, c2 = (0.01 * value_range) ** 2, (0.03 * value_range) ** 2
    var_x, var_y = xx - mu_x**2, yy - mu_y**2
    covariance = xy - mu_x * mu_y
    return ((2 * mu_x * mu_y + c1) * (2 * covariance + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))


def _as_tensor(array: np.ndarray) -> torch.Tensor:
    """Float32 array → tensor through bytes (see `TorchMnistBench.to_tensor`)."""
    array = np.ascontiguousarray(array, dtype=np.float32)
    return torch.frombuffer(bytearray(array.tobytes()), dtype=torch.float32).reshape(array.shape)


class TorchMnistBench:
    """Times training and scoring of the PyTorch reference on NCHW float32 batches.

    Args:
        threads: `torch.set_num_threads` value (the cores the TF side uses).
        seed: Seed for the weights.
    """

    def __init__(self, threads: int, seed: int = 0) -> None:
        torch.set_num_threads(threads)
        torch.manual_seed(seed)
        self.model = MemAEMnist()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)

    @staticmethod
    def to_tensor(x: np.ndarray) -> torch.Tensor:
        """NHWC float32 array (what the TF side gets) → NCHW tensor, done once, untimed.

        Copied through bytes rather than `torch.from_numpy`: with NumPy 2.4 the
        NumPy bridge of torch 2.13 corrupts the heap here (from_numpy and
        torch.tensor of an array both crashed in the next convolution).
        """
        return _as_tensor(x.transpose(0, 3, 1, 2))

    def train(self, data: torch.Tensor, batch_size: int = 64) -> None:
        """One epoch over `data` (NCHW) in full batches."""
        self.model.train()
        for start in range(0, len(data) - batch_size + 1, batch_size):
            batch = data[start:start + batch_size]
            reconstruction, entropy = self.model(batch)
            loss = torch.mean((reconstruction - batch) ** 2) + entropy
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()

    @torch.inference_mode()
    def score(self, data: torch.Tensor, batch_size: int = 256) -> np.ndarray:
        """Per-sample mean of 1 − SSIM between `data` (NCHW, in [-1, 1]) and its reconstruction."""
        self.model.eval()
        scores = []
        for start in range(0, len(data), batch_size):
            batch = data[start:start + batch_size]
            reconstruction, _ = self.model(batch)
            similarity = _ssim_map(batch, reconstruction, value_range=2.0)
            scores.append((1.0 - similarity).mean(dim=(1, 2, 3)).tolist())
        return np.asarray([s for part in scores for s in part], dtype=np.float32)

    def parameter_count(self) -> int:
        """Trainable parameters (compare with the Keras model's)."""
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

"""Sub-pixel form of 2-D transposed convolutions: the same function, other kernels.

A transposed convolution with stride `s` writes every output pixel from the
input pixels and kernel taps of one of `s × s` *phases* (the output pixel's
position modulo `s`). Gathering each phase's taps into one small kernel turns
the layer into a stride-1 convolution with `s² · C_out` output channels (the
phases), whose result is interleaved back into the full-size image: a
"sub-pixel" or polyphase convolution. It computes exactly the same sums, in
another order.

TensorFlow's CPU transposed convolution (oneDNN's backward-data kernel) is
slow when it has few output channels: on 2 CPU cores at batch 1024 the
`mnist` preset's one-channel output layer ran 1.8–2.3× faster in sub-pixel
form and the `cifar10` preset's three-channel one 1.8×, while the 16- and
32-channel decoder layers ran 1.1× and 0.64× as fast (`benchmarks/HISTORY.md`,
"Reading these numbers"). `memae_tf.models.bn_folding.inference_model` therefore rewrites the
layers with at most `SUBPIXEL_MAX_CHANNELS` output channels.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

# The most output channels for which the inference view uses the sub-pixel form.
SUBPIXEL_MAX_CHANNELS = 4


def _phase_taps(size: int, out_size: int, kernel: int, stride: int) -> tuple[dict, int, int]:
    """Per output phase, the kernel taps that reach it and their input offsets, along one axis.

    With `pad` the leading padding of TensorFlow's transposed convolution,
    output pixel `o` sums input `i` times tap `t` wherever `o = s i + t - pad`;
    for `o = s m + p` that is input `m + d` with `d = (p + pad - t) / s`.

    Returns:
        `{(phase, tap): offset}`, the smallest and the largest offset.
    """
    pad = max((size - 1) * stride + kernel - out_size, 0) // 2
    taps = {(phase, tap): (phase + pad - tap) // stride
            for phase in range(stride) for tap in range(kernel)
            if (phase + pad - tap) % stride == 0}
    offsets = list(taps.values())
    return taps, min(offsets), max(offsets)


def conv_transpose_subpixel(
    inputs, kernel, strides: Sequence[int], output_size: Sequence[int]
):
    """Computes a 2-D transposed convolution ("same" or "valid") as a sub-pixel convolution.

    Equal to `keras.ops.conv_transpose(inputs, kernel, strides, padding,
    output_padding)` for channels-last inputs, no dilation, and whatever
    padding and output padding produced `output_size` (up to the order of
    the floating-point sums). The phase kernel is gathered from `kernel`
    inside the graph, so it follows the variable it is computed from.

    Args:
        inputs: Tensor `(batch, H, W, C_in)` with static `H` and `W`.
        kernel: Transposed-convolution kernel `(kh, kw, C_out, C_in)`, as
            `keras.layers.Conv2DTranspose` holds it.
        strides: `(sh, sw)`.
        output_size: The layer's output `(H_out, W_out)`.

    Returns:
        Tensor `(batch, H_out, W_out, C_out)`.

    Example:

    >>> layer = keras.layers.Conv2DTranspose(1, 3, strides=2, padding="same", use_bias=False)
    >>> x = np.random.rand(2, 7, 7, 4).astype("float32")
    >>> expected = layer(x)
    >>> y = conv_transpose_subpixel(x, layer.kernel, (2, 2), (14, 14))
    >>> bool(np.allclose(y, expected, atol=1e-5))
    True
    """
    kh, kw, c_out, c_in = kernel.shape
    (sh, sw), (out_h, out_w) = tuple(strides), tuple(output_size)
    height, width = inputs.shape[1], inputs.shape[2]
    rows, row_low, row_high = _phase_taps(height, out_h, kh, sh)
    cols, col_low, col_high = _phase_taps(width, out_w, kw, sw)
    window = (row_high - row_low + 1, col_high - col_low + 1)
    # Index of each phase-kernel entry in the flattened (kh·kw) taps; kh·kw is a zero tap.
    index = np.full((*window, sh, sw), kh * kw, dtype="int32")
    for (phase_r, tap_r), offset_r in rows.items():
        for (phase_c, tap_c), offset_c in cols.items():
            index[offset_r - row_low, offset_c - col_low, phase_r, phase_c] = tap_r * kw + tap_c
    taps = ops.concatenate(
        [ops.reshape(kernel, (kh * kw, c_out, c_in)), ops.zeros((1, c_out, c_in), kernel.dtype)]
    )
    phases = ops.take(taps, index.reshape(-1), axis=0)  # (window, sh, sw, C_out, C_in)
    phases = ops.transpose(ops.reshape(phases, (*window, sh * sw * c_out, c_in)), (0, 1, 3, 2))
    # Phase m of the output reads inputs m + low ... m + high: pad with zeros to cover them.
    steps_h, steps_w = -(-out_h // sh), -(-out_w // sw)
    pad_h = (max(0, -row_low), max(0, steps_h - 1 + row_high - (height - 1)))
    pad_w = (max(0, -col_low), max(0, steps_w - 1 + col_high - (width - 1)))
    padded = ops.pad(inputs, ((0, 0), pad_h, pad_w, (0, 0)))
    top, left = row_low + pad_h[0], col_low + pad_w[0]
    rows_needed, cols_needed = steps_h + window[0] - 1, steps_w + window[1] - 1
    if (top, left, rows_needed, cols_needed) != (0, 0, *padded.shape[1:3]):
        padded = padded[:, top:top + rows_needed, left:left + cols_needed]
    outputs = ops.conv(padded, phases, strides=1, padding="valid")
    # (batch, m_h, m_w, sh, sw, C_out) → (batch, m_h, sh, m_w, sw, C_out): interleave the phases.
    outputs = ops.reshape(outputs, (-1, steps_h, steps_w, sh, sw, c_out))
    outputs = ops.reshape(ops.transpose(outputs, (0, 1, 3, 2, 4, 5)),
                          (-1, steps_h * sh, steps_w * sw, c_out))
    if (steps_h * sh, steps_w * sw) != (out_h, out_w):
        outputs = outputs[:, :out_h, :out_w]
    return outputs


def is_subpixel_candidate(layer: keras.layers.Layer) -> bool:
    """Whether the inference view computes `layer` in sub-pixel form.

    True for a channels-last `Conv2DTranspose` without dilation, with a
    stride above 1 and at most `SUBPIXEL_MAX_CHANNELS` output channels (the
    spatial size of its input must also be static when it is called).
    """
    return (
        isinstance(layer, keras.layers.Conv2DTranspose)
        and layer.data_format == "channels_last"
        and all(d == 1 for d in layer.dilation_rate)
        and any(s > 1 for s in layer.strides)
        and layer.filters <= SUBPIXEL_MAX_CHANNELS
    )

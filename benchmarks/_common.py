"""Shared helpers of the benchmark scripts: machine facts, timing, RESULTS.md sections."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import resource
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def configure_threads(threads: int | None) -> None:
    """Sets TensorFlow's op thread pools (before TensorFlow runs anything)."""
    if threads is None:
        return
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


# The vector extensions that decide which kernels oneDNN, XLA and PyTorch pick: the same
# code gave different speed ratios on AVX-512 and AVX2-only machines.
_VECTOR_FLAGS = ("avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "avx2",
                 "fma", "avx_vnni")


def vector_extensions(cpuinfo: str) -> str:
    """The SIMD extensions of the first CPU listed in `/proc/cpuinfo` text, in a fixed order.

    Example:

    >>> vector_extensions("flags : fpu sse2 avx2 fma")
    'avx2 fma'
    """
    found = re.search(r"^flags\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    flags = set(found.group(1).split()) if found else set()
    return " ".join(flag for flag in _VECTOR_FLAGS if flag in flags) or "none listed"


# Environment variables that cap the vector instructions each library's kernels may use,
# per cap: oneDNN (TensorFlow's and PyTorch's), XLA:CPU's code generator and PyTorch's
# ATen dispatch. TensorFlow's Eigen kernels are compiled for AVX and need no cap.
ISA_CAPS = {
    "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "XLA_FLAGS": "--xla_cpu_max_isa=AVX2",
             "ATEN_CPU_CAPABILITY": "avx2"},
}


def cap_isa(cap: str | None) -> None:
    """Caps the instruction set of TensorFlow's, XLA's and PyTorch's CPU kernels.

    Sets the environment variables of `ISA_CAPS[cap]` for this process and its
    children; must run before TensorFlow or PyTorch is imported. On an AVX-512
    machine, `cap_isa("avx2")` makes the libraries pick the kernels an AVX2-only
    machine runs (the cores stay the same, so it is a proxy, not that machine).

    Args:
        cap: a key of `ISA_CAPS`, or None for no cap.
    """
    if cap is None:
        return
    if cap not in ISA_CAPS:
        raise ValueError(f"Expected an instruction-set cap in {sorted(ISA_CAPS)}. "
                         f"Received: cap={cap!r}")
    for name, value in ISA_CAPS[cap].items():
        if name == "XLA_FLAGS" and os.environ.get(name):
            value = f"{os.environ[name]} {value}"
        os.environ[name] = value


def onednn_state() -> str:
    """`TF_ENABLE_ONEDNN_OPTS` and whether TensorFlow's oneDNN kernels are on in this process.

    Unset, TensorFlow turns them on only on CPUs with AVX-512 VNNI, AVX-512
    BF16 or AMX, not on AVX2-only machines: the variable alone does not tell.
    """
    from tensorflow.python.util import _pywrap_util_port

    state = "on" if _pywrap_util_port.IsMklEnabled() else "off"
    return f"{os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset')} (oneDNN {state})"


def machine() -> dict[str, str]:
    """CPU, its vector extensions, core count, load, GPU and package versions, for the record."""
    cpu = platform.processor() or platform.machine()
    extensions = "unknown (no /proc/cpuinfo)"
    try:
        with open("/proc/cpuinfo") as info:
            text = info.read()
        found = re.search(r"model name\s*:\s*(.+)", text)
        cpu = found.group(1).strip() if found else cpu
        extensions = vector_extensions(text)
    except OSError:
        pass
    facts = {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "vector extensions": extensions,
        "load average (1/5/15 min) at start": " / ".join(f"{v:.1f}" for v in os.getloadavg()),
        "python": sys.version.split()[0],
        "TF_ENABLE_ONEDNN_OPTS": onednn_state(),
        # PyTorch's OpenMP threads: PASSIVE halved the reference's training here.
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "unset (OpenMP's default)"),
        "instruction-set cap": ", ".join(
            f"{name}={os.environ[name]}" for name in ISA_CAPS["avx2"] if os.environ.get(name)
        ) or "none (the CPU's own)",
        **{name: _version(name) for name in ("tensorflow", "keras", "numpy", "torch")},
    }
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        facts["gpu"] = f"{len(gpus)} × {details.get('device_name', gpus[0].name)}"
    return facts


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rate(samples: int, seconds: list[float]) -> tuple[float, float]:
    """(median, best) samples per second over repeated timings of `samples` samples."""
    return samples / statistics.median(seconds), samples / min(seconds)


def percentiles(values: list[float], *quantiles: float) -> list[float]:
    """Quantiles (0..100) of `values`, nearest-rank."""
    ordered = sorted(values)
    return [ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]
            for q in quantiles]


def interleave(functions: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Calls each function once per round, `repeats` rounds, collecting the seconds they
    return; alternating keeps the machine's load the same for all on a busy host."""
    seconds: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            seconds[name].append(function())
    return seconds


def write_measured(path: Path, title: str, body: str) -> None:
    """Puts `body` between the measurement markers of the `## title` section of `path`.

    Only the text between `<!-- measured:begin -->` and `<!-- measured:end -->`
    changes, so hand-written analysis around it and the other sections of the
    file stay; a missing section is appended with the markers.
    """
    begin, end = "<!-- measured:begin -->", "<!-- measured:end -->"
    block = f"{begin}\n{body.strip()}\n{end}"
    text = path.read_text() if path.exists() else ""
    heading = f"## {title}"
    section = re.search(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", text, re.S | re.M)
    if section and begin in section.group(0):
        start, stop = section.start() + section.group(0).index(begin), section.start() + (
            section.group(0).index(end) + len(end))
        text = text[:start] + block + text[stop:]
    elif section:
        text = text[:section.end()].rstrip() + "\n\n" + block + "\n\n" + text[section.end():]
    else:
        text = (text.rstrip() + "\n\n" if text.strip() else "") + f"{heading}\n\n{block}\n"
    path.write_text(text.rstrip() + "\n")

"""Where the first and later `fit` and `score` calls of a new detector spend their time.

A notebook user meets the first call of every new detector: it traces the
training step, draws the memory items from encodings (`adapt_memory`) and traces
the scoring graph, all of which later calls reuse. This script times three
`fit` calls of one detector, and the phases inside them, in CPU seconds of the
process (all threads) beside wall seconds: CPU time stays comparable on a busy
machine, where wall time does not.

    python benchmarks/first_call.py                       # mnist preset, 6,000 images, 5 epochs
    python benchmarks/first_call.py --samples 1000 --epochs 1  # seconds (tests)
    python benchmarks/first_call.py --threads 1           # TensorFlow's op thread pools at 1

Prints one JSON object: per call, total CPU and wall seconds, CPU seconds per
epoch, per phase and per kind of thread, and the CPU seconds of each call of
Keras' compiled train function (32 steps each by default; the first call of a
new detector includes its trace and graph optimisation); then the first and
second `score` of `--score` samples. The phases are disjoint: the input
pipeline (`reconstruction_dataset`), the memory's samples and initialisation
(`memory_samples`, `adapt_memory`), compiling, the training steps
(`train_steps`), creating each epoch's dataset iterator (`iterators`), the
memory checks at each epoch end (`memory_checks`), the scoring of the training
data for `decision_scores_` (`decision_scores`), and `other`: the rest of the
call (Keras' loop and callbacks, Python).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import _common

# Phases nest (the memory checks run inside Keras' fit): only the outermost one counts.
_ACTIVE: list[str] = []


class _Phases:
    """CPU and wall seconds spent inside instrumented functions, per name, not nested."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = {}

    def wrap(
        self, name: str, function: Callable[..., Any], calls: list[float] | None = None
    ) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            if _ACTIVE:
                return function(*args, **kwargs)
            _ACTIVE.append(name)
            cpu, wall = time.process_time(), time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                _ACTIVE.pop()
                spent = self.seconds.setdefault(name, [0.0, 0.0])
                spent[0] += time.process_time() - cpu
                spent[1] += time.perf_counter() - wall
                if calls is not None:
                    calls.append(round(time.process_time() - cpu, 3))

        return timed


def thread_cpu() -> dict[int, tuple[str, float]]:
    """CPU seconds so far of each thread of this process: thread id → (name, seconds)."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as comm, \
                    open(f"/proc/self/task/{tid}/stat") as stat:
                name = comm.read().strip()
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended
            continue
        found[int(tid)] = (name, (int(fields[11]) + int(fields[12])) / ticks)
    return found


def thread_kind(tid: int, name: str, main: int) -> str:
    """The pool a thread belongs to, from its name (TensorFlow names its pools).

    Example:

    >>> thread_kind(7, "tf_Compute", main=1), thread_kind(1, "python", main=1)
    ('inter-op (tf_Compute)', 'main (Python)')
    """
    if tid == main:
        return "main (Python)"
    if name.startswith("tf_Compute"):
        return "inter-op (tf_Compute)"
    if name.startswith("tf_data"):
        return "tf.data"
    # TensorFlow's intra-op (Eigen) pool threads keep the process's name.
    return "intra-op (unnamed)" if name == "python" else name


def _thread_seconds(before: dict, after: dict, main: int) -> dict[str, float]:
    kinds: collections.Counter = collections.Counter()
    for tid, (name, seconds) in after.items():
        kinds[thread_kind(tid, name, main)] += seconds - before.get(tid, (name, 0.0))[1]
    return {kind: round(seconds, 2) for kind, seconds in kinds.most_common() if seconds >= 0.01}


def measure(preset: str, x: Any, epochs: int, score: int, fits: int = 3) -> dict[str, Any]:
    """Times `fits` `fit` calls and two `score` calls of one new detector."""
    import keras
    from keras.src.backend.tensorflow import trainer as keras_trainer

    import memae_tf.detector as detector_module
    import memae_tf.training.memory_check as memory_check
    import memae_tf.training.trainer as trainer
    from memae_tf import MemAE

    phases = _Phases()
    train_calls: list[float] = []
    for name in ("reconstruction_dataset", "memory_samples", "adapt_memory"):
        setattr(trainer, name, phases.wrap(name, getattr(trainer, name)))
    trainer.Trainer._compile = phases.wrap("compile", trainer.Trainer._compile)
    check = memory_check.MemoryCollapseCheck
    check.on_epoch_end = phases.wrap("memory_checks", check.on_epoch_end)
    score_method = detector_module.MemAE.score
    detector_module.MemAE.score = phases.wrap("decision_scores", score_method)
    epoch_iterator = keras_trainer.TFEpochIterator
    make_iterator = epoch_iterator._get_iterator

    class _TimedIterable:
        def __init__(self, dataset: Any) -> None:
            self.dataset = dataset

        def __iter__(self) -> Any:
            return phases.wrap("iterators", iter)(self.dataset)

    epoch_iterator._get_iterator = lambda self: _TimedIterable(make_iterator(self))
    make_train_function = keras_trainer.TensorFlowTrainer.make_train_function

    def timed_train_function(self: Any, force: bool = False) -> Any:
        make_train_function(self, force)
        if not getattr(self.train_function, "timed", False):
            self.train_function = phases.wrap("train_steps", self.train_function, train_calls)
            self.train_function.timed = True
        return self.train_function

    keras_trainer.TensorFlowTrainer.make_train_function = timed_train_function

    class _EpochCpu(keras.callbacks.Callback):
        def __init__(self, out: list[float]) -> None:
            super().__init__()
            self.out = out

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.start = time.process_time()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.out.append(round(time.process_time() - self.start, 2))

    main = threading.get_native_id()
    detector = MemAE.from_preset(preset)
    result: dict[str, Any] = {}
    for call in ("first_fit", "second_fit", "third_fit")[:fits]:
        phases.seconds.clear()
        train_calls.clear()
        epochs_cpu: list[float] = []
        threads = thread_cpu()
        cpu, wall = time.process_time(), time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # Keras' progress bar, as a user sees it
            detector.fit(x, epochs=epochs, callbacks=[_EpochCpu(epochs_cpu)])
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        spent = {name: round(seconds[0], 2) for name, seconds in phases.seconds.items()}
        spent["other"] = round(cpu - sum(seconds[0] for seconds in phases.seconds.values()), 2)
        result[call] = {
            "cpu_s": round(cpu, 2),
            "wall_s": round(wall, 2),
            "epochs_cpu_s": epochs_cpu,
            "phases_cpu_s": spent,
            "train_calls_cpu_s": list(train_calls),
            "threads_cpu_s": _thread_seconds(threads, thread_cpu(), main),
        }
    detector_module.MemAE.score = score_method
    for call in ("first_score", "second_score"):
        cpu, wall = time.process_time(), time.perf_counter()
        detector.score(x[:score])
        result[call] = {"cpu_s": round(time.process_time() - cpu, 2),
                        "wall_s": round(time.perf_counter() - wall, 2)}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="mnist", help="(default: %(default)s)")
    parser.add_argument("--samples", type=int, default=6000,
                        help="training images of digit 3 (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=5, help="(default: %(default)s)")
    parser.add_argument("--fits", type=int, default=3, choices=(2, 3),
                        help="fit calls of the detector (default: %(default)s)")
    parser.add_argument("--score", type=int, default=4096,
                        help="samples scored per score call (default: %(default)s)")
    parser.add_argument("--threads", type=int,
                        help="TensorFlow's intra- and inter-op threads (default: TensorFlow's)")
    args = parser.parse_args(argv)
    _common.configure_threads(args.threads)
    from memae_tf.data import load_mnist

    (x, y), _ = load_mnist()
    x = x[y == 3][: args.samples]
    with open("/proc/loadavg") as load:
        start_load = " / ".join(load.read().split()[:3])
    report = {"machine": _common.machine(), "load_at_start": start_load, "preset": args.preset,
              "samples": len(x), "epochs": args.epochs, "threads": args.threads,
              **measure(args.preset, x, args.epochs, args.score, args.fits)}
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Draws the documentation's figures from the current `mnist` preset, and records how.

    python benchmarks/docs_figures.py            # make figures

Trains MemAE and the plain AE of the `mnist` preset on one MNIST digit with the
preset's training settings (`TrainingConfig`'s defaults plus the preset's own),
then writes

- `docs/reconstruction_grid.png`: the test digits MemAE finds most and least
  anomalous, with both models' reconstructions and error maps;
- `docs/memory_items.png`: every memory item decoded, with its usage by the
  normal test digits;
- `docs/figures.json`: for each figure, the preset and training settings it was
  drawn with, what the run measured, the machine, the command and the PNG's
  SHA-256. `tests/test_docs_figures.py` fails when the preset's settings no
  longer match, so the figures are redrawn when the defaults change.

About 2-4 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import _common

DOCS = Path(__file__).resolve().parents[1] / "docs"
PRESET = "mnist"


def _instruction_set() -> str:
    try:
        flags = set(re.findall(r"\b(avx512\w*|avx2)\b", Path("/proc/cpuinfo").read_text()))
    except OSError:
        return "unknown"
    if "avx512f" in flags:
        return "AVX-512 (" + ", ".join(sorted(f for f in flags if f.startswith("avx512"))) + ")"
    return "AVX2" if "avx2" in flags else "no AVX2"


def jsonable(value: Any) -> Any:
    """`value` as JSON gives it back (tuples become lists)."""
    return json.loads(json.dumps(value))


def preset_settings(name: str) -> dict[str, Any]:
    """The preset's architecture, input range, error and training settings, as JSON."""
    from memae_tf.models.presets import get_preset
    from memae_tf.training import TrainingConfig

    preset = get_preset(name)
    overrides = dict(getattr(preset, "training", {}) or {})
    config = TrainingConfig(**overrides)
    training = {field.name: getattr(config, field.name) for field in dataclasses.fields(config)
                if field.name in {"epochs", "batch_size", "learning_rate", "lr_decay",
                                  "memory_init", "steps_per_epoch"}}
    return jsonable({"preset": name, "kwargs": preset.kwargs,
                     "input_range": preset.input_range, "error": preset.error,
                     "training": training})


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--digit", type=int, default=3, help="the normal MNIST digit")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--test-samples", type=int, default=2000,
                        help="test images the figures rank and inspect")
    parser.add_argument("--out", type=Path, default=DOCS, help="folder of the figures")
    args = parser.parse_args(argv)

    from sklearn.metrics import roc_auc_score

    from memae_tf import MemAE, plot
    from memae_tf.data import load_mnist
    from memae_tf.inspection import decode_memory_items

    started = time.time()
    settings = preset_settings(PRESET)
    (x_train, y_train), (x_test, y_test) = load_mnist()
    normal = x_train[y_train == args.digit]
    n = len(normal) // 10
    held_out, train = normal[:n], normal[n:]
    x_view, y_view = x_test[: args.test_samples], y_test[: args.test_samples]
    labels = (y_view != args.digit).astype(int)

    detectors, measured = {}, {}
    for variant, name in (("memae", "memae"), ("ae", "ae")):
        detector = MemAE.from_preset(PRESET, variant=variant)
        detector.fit(train, seed=args.seed, verbose=0)
        detector.infer_threshold(held_out, fpr=0.05)
        detectors[name] = detector
        measured[f"auroc_{name}"] = round(float(roc_auc_score(
            (y_test != args.digit).astype(int), detector.score(x_test))), 4)
    report = detectors["memae"].memory_report(x_view[labels == 0])
    measured["items_unused_by_normal_test_digits"] = len(report.unused_items)
    measured["effective_items_per_query"] = round(report.summary()["effective_items"], 2)

    args.out.mkdir(parents=True, exist_ok=True)
    grid = args.out / "reconstruction_grid.png"
    items = args.out / "memory_items.png"
    plot.reconstruction_grid(detectors, x_view, labels,
                             title=f"MNIST, digit {args.digit} normal").savefig(grid, dpi=110)
    plot.memory_items(decode_memory_items(detectors["memae"].model), report,
                      input_range=detectors["memae"].input_range,
                      title="MemAE's memory items, decoded").savefig(items, dpi=110)

    facts = _common.machine()
    run = {
        **settings,
        "data": {"dataset": "mnist", "normal_digit": args.digit, "train_images": len(train),
                 "threshold_images": len(held_out), "test_images_shown": len(x_view),
                 "seed": args.seed},
        "measured": measured,
        "machine": {"cpu": facts["cpu"], "instruction_set": _instruction_set(),
                    "tensorflow": facts["tensorflow"], "keras": facts["keras"],
                    "load_average_at_start": facts["load average (1/5/15 min) at start"]},
        "command": " ".join(["python benchmarks/docs_figures.py",
                             *(sys.argv[1:] if argv is None else argv)]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "seconds": round(time.time() - started, 1),
    }
    record = {path.name: {**run, "sha256": sha256(path)} for path in (grid, items)}
    (args.out / "figures.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(measured))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

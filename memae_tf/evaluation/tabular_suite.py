"""The tabular development suite: every table protocol × model × split × seed, in one table.

`run_suite` runs the `tabular` preset (MemAE and its AE, raw features in) and
the baselines on the ODDS-style protocols of `memae_tf.data.table_protocols`,
and writes `OUT/results.md`: mean AUROC ± standard deviation over the runs
(splits × seeds) of each table, the mean AUROC over tables, each model's mean
rank (per table, the models ranked by mean AUROC, 1 = best, ties averaged),
and the spread over seeds (per split, the standard deviation over seeds;
averaged over splits). `memae experiment tabular-suite` calls it.

A task is one model on one table, split and seed. Each finished task is
stored at once in `OUT/results.json` (with its test scores in `OUT/scores/`),
so an interrupted run resumes with `resume=True`, also with more tables,
splits, seeds or models, as long as the settings (preset, overrides,
training) are the same.

The MemAE variants get raw features and the preset's training defaults (or
`training` settings replacing them). The baselines get the features
standardised with the mean and standard deviation of the training rows (as
the preset's `"standard"` scaling does inside the network; Isolation Forest
and ECOD are unchanged by it); OC-SVM trains on at most 2,000 of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
from scipy.stats import rankdata

from memae_tf.choices import BASELINES, VARIANTS
from memae_tf.common.checks import check_choice
from memae_tf.data.table_protocols import (
    DEVELOPMENT_PROTOCOLS,
    get_protocol,
    load_protocol,
    protocol_split,
)
from memae_tf.detector import MemAE
from memae_tf.evaluation.baselines import make_baseline
from memae_tf.evaluation.experiment import ResultStore
from memae_tf.evaluation.metrics import Evaluation, ranking_metrics
from memae_tf.models.presets import get_preset

SUITE_MODELS = (*VARIANTS, *BASELINES)
MODEL_NAMES = {"memae": "MemAE", "memae-nonspar": "MemAE-nonSpar", "ae": "AE",
               "iforest": "IsolationForest", "ocsvm": "OC-SVM", "lof": "LOF", "ecod": "ECOD"}
OCSVM_MAX_TRAIN = 2000


@dataclass
class SuiteConfig:
    """The settings that change the suite's numbers (its identity for resuming).

    Attributes:
        overrides: `tabular` preset overrides of the MemAE variants
            (e.g. `{"similarity": "euclidean"}`).
        training: `TrainingConfig` settings replacing the preset's (e.g.
            `{"epochs": 2}`); the seed is the task's.
        data_path: Folder holding the mlbench `.rda` files (None: searched as
            `load_mlbench` does, never downloaded: `make data` fetches them).
    """

    overrides: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    data_path: str | None = None

    def identity(self) -> dict[str, Any]:
        """The settings, with the preset's own, as stored in `results.json`."""
        preset = get_preset("tabular")
        return {**asdict(self), "preset": {"kwargs": preset.kwargs, "training": preset.training}}


def task_unit(table: str, split: int, seed: int) -> str:
    """`"TABLE-splitK-seedS"`, a task's unit in `results.json`."""
    return f"{table}-split{split}-seed{seed}"


def evaluate_task(config: SuiteConfig, model: str, data: Any, split: int, seed: int
                  ) -> Evaluation:
    """Trains `model` on the normal training rows of one split and scores the test rows.

    Args:
        config: The suite settings.
        model: A MemAE variant or a baseline (`SUITE_MODELS`).
        data: The table (`load_protocol`).
        split: The split (`protocol_split`).
        seed: Seed of the network's weights and shuffling, or of the baseline.

    Returns:
        An `Evaluation` with `auroc` and `aupr` over the test rows.
    """
    check_choice("model", model, tuple(SUITE_MODELS))
    train, test = protocol_split(data.y, split)
    x_train, x_test = data.x[train], data.x[test]
    if model in VARIANTS:
        keras.utils.set_random_seed(seed)
        detector = MemAE.from_preset("tabular", model, **config.overrides)
        detector.fit(x_train, verbose=0, **{**config.training, "seed": seed})
        scores = detector.score(x_test)
    else:
        mean, std = x_train.mean(axis=0), x_train.std(axis=0)
        std[std == 0] = 1.0
        baseline = make_baseline(model, seed=seed,
                                 max_train_samples=OCSVM_MAX_TRAIN if model == "ocsvm" else None)
        baseline.fit((x_train - mean) / std)
        scores = baseline.score((x_test - mean) / std)
    labels = data.y[test]
    return Evaluation(np.asarray(scores, np.float64), labels,
                      ranking_metrics(labels, np.asarray(scores, np.float64)),
                      {"n_train": len(train), "n_test": len(test),
                       "anomaly_share": float(labels.mean())})


def run_suite(
    config: SuiteConfig,
    models: Sequence[str],
    out: str | Path,
    tables: Sequence[str] = tuple(DEVELOPMENT_PROTOCOLS),
    splits: Sequence[int] = range(5),
    seeds: Sequence[int] = (0,),
    resume: bool = False,
    overwrite: bool = False,
    log: Callable[[str], None] = lambda line: print(line, flush=True),
) -> dict[str, dict[str, Any]]:
    """Runs every (table, split, seed, model) task not yet in `out`; writes `results.md`.

    Args:
        config: The suite settings.
        models: Models to run (`SUITE_MODELS`).
        out: The suite's folder.
        tables: Table protocols (default: the development suite; `LetterRecognition`
            has none: it is held out).
        splits: Split numbers.
        seeds: Seeds.
        resume: Continue a folder made with the same settings.
        overwrite: Delete the folder's previous results first.
        log: Progress sink.

    Returns:
        The stored tasks, `"model/unit"` → record.

    Raises:
        ValueError: For an unknown model or table, or no task.

    Example:

    ```python
    run_suite(SuiteConfig(), ["memae", "ae", "iforest"], "runs/tabular-suite", seeds=(0, 1, 2))
    ```
    """
    unknown = [m for m in models if m not in SUITE_MODELS]
    if unknown or not models:
        raise ValueError(f"Expected models among {list(SUITE_MODELS)}. Received: {list(models)}")
    for table in tables:
        get_protocol(table)
    if not tables or not list(splits) or not list(seeds):
        raise ValueError("Expected at least one table, split and seed.")
    out = Path(out)
    store = ResultStore(out, config, resume=resume, overwrite=overwrite)
    todo = [(table, split, seed, model) for table in tables for split in splits
            for seed in seeds for model in models
            if f"{model}/{task_unit(table, split, seed)}" not in store.tasks]
    log(f"tabular suite: {len(todo)} tasks to run → {out}")
    started, loaded = time.monotonic(), {}
    for position, (table, split, seed, model) in enumerate(todo, start=1):
        if table not in loaded:
            loaded = {table: load_protocol(table, config.data_path, download=False)}
        begin = time.monotonic()
        evaluation = evaluate_task(config, model, loaded[table], split, seed)
        seconds = time.monotonic() - begin
        unit = task_unit(table, split, seed)
        store.add({"model": model, "unit": unit, "table": table, "split": split, "seed": seed,
                   "metrics": evaluation.metrics, "info": evaluation.info,
                   "seconds": round(seconds, 2)}, evaluation)
        eta = (time.monotonic() - started) / position * (len(todo) - position)
        log(f"[{position}/{len(todo)}] {model} {unit}: auroc={evaluation.metrics['auroc']:.4f} "
            f"({seconds:.1f} s; about {eta / 60:.1f} min left)")
    (out / "results.md").write_text(suite_table(store.tasks))
    log(f"results: {out / 'results.md'}")
    return store.tasks


def _aurocs(tasks: dict[str, dict[str, Any]]) -> dict[tuple[str, str], dict[tuple, float]]:
    """(table, model) → {(split, seed): AUROC}."""
    grouped: dict[tuple[str, str], dict[tuple, float]] = {}
    for record in tasks.values():
        grouped.setdefault((record["table"], record["model"]), {})[
            (record["split"], record["seed"])] = record["metrics"]["auroc"]
    return grouped


def seed_spread(runs: dict[tuple, float]) -> float | None:
    """Mean over splits of the standard deviation of AUROC over seeds (None: one seed).

    Example:

    >>> seed_spread({(0, 0): 0.8, (0, 1): 0.9, (1, 0): 0.7, (1, 1): 0.7})
    0.025
    """
    by_split: dict[int, list[float]] = {}
    for (split, _), value in runs.items():
        by_split.setdefault(split, []).append(value)
    spreads = [np.std(values) for values in by_split.values() if len(values) > 1]
    return round(float(np.mean(spreads)), 6) if spreads else None


def suite_summary(tasks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Means, spreads and ranks of stored suite tasks.

    Returns:
        Dict with `tables`, `models` (in `SUITE_MODELS` order), `mean[table][model]`,
        `std[table][model]` (over splits and seeds), `seed_spread[table][model]`,
        `runs[table][model]`, `mean_auroc[model]` and `mean_rank[model]`
        (over the tables every model has run on).
    """
    grouped = _aurocs(tasks)
    tables = list(dict.fromkeys(table for table, _ in grouped))
    models = [m for m in SUITE_MODELS if any(model == m for _, model in grouped)]
    mean = {t: {m: float(np.mean(list(grouped[t, m].values()))) for m in models
                if (t, m) in grouped} for t in tables}
    std = {t: {m: float(np.std(list(grouped[t, m].values()))) for m in models
               if (t, m) in grouped} for t in tables}
    spread = {t: {m: seed_spread(grouped[t, m]) for m in models if (t, m) in grouped}
              for t in tables}
    runs = {t: {m: len(grouped[t, m]) for m in models if (t, m) in grouped} for t in tables}
    complete = [t for t in tables if len(mean[t]) == len(models)]
    ranks = {m: [] for m in models}
    for t in complete:
        for m, r in zip(models, rankdata([-mean[t][m] for m in models]), strict=True):
            ranks[m].append(float(r))
    return {
        "tables": tables, "models": models, "mean": mean, "std": std, "seed_spread": spread,
        "runs": runs,
        "mean_auroc": {m: float(np.mean([mean[t][m] for t in complete])) for m in models}
        if complete else {},
        "mean_rank": {m: float(np.mean(ranks[m])) for m in models} if complete else {},
    }


def suite_table(tasks: dict[str, dict[str, Any]]) -> str:
    """The Markdown report of `results.md`: AUROC table, mean AUROC, mean rank, seed spread."""
    summary = suite_summary(tasks)
    models, tables = summary["models"], summary["tables"]
    header = "| table | " + " | ".join(MODEL_NAMES[m] for m in models) + " |"
    rule = "|---|" + "---|" * len(models)
    lines = ["# Tabular suite: AUROC", "",
             "Mean ± standard deviation over the runs (splits × seeds) of each table.", "",
             header, rule]
    for t in tables:
        best = max(summary["mean"][t].values())
        cells = []
        for m in models:
            if m not in summary["mean"][t]:
                cells.append("–")
                continue
            cell = f"{summary['mean'][t][m]:.3f} ± {summary['std'][t][m]:.3f}"
            cells.append(f"**{cell}**" if summary["mean"][t][m] == best else cell)
        runs = sorted(set(summary["runs"][t].values()))
        lines.append(f"| {t} ({'/'.join(map(str, runs))} runs) | " + " | ".join(cells) + " |")
    if summary["mean_rank"]:
        lines.append("| mean AUROC | " + " | ".join(
            f"{summary['mean_auroc'][m]:.3f}" for m in models) + " |")
        lines.append("| mean rank | " + " | ".join(
            f"{summary['mean_rank'][m]:.2f}" for m in models) + " |")
    spreads = [(t, m) for t in tables for m in models
               if summary["seed_spread"][t].get(m) is not None]
    if spreads:
        lines += ["", "## Spread over seeds", "",
                  "Per split, the standard deviation of AUROC over seeds; mean over splits.", "",
                  header, rule]
        for t in tables:
            lines.append(f"| {t} | " + " | ".join(
                "–" if summary["seed_spread"][t].get(m) is None
                else f"{summary['seed_spread'][t][m]:.3f}" for m in models) + " |")
    return "\n".join(lines) + "\n"

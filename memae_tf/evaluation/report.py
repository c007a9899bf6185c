"""Reports of an experiment folder: `results.csv`, `results.md` and ROC-PR / histogram PNGs.

Everything is derived from `results.json` and the saved test scores, so the
reports can be rebuilt at any time (`write_reports`).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from memae_tf.evaluation.datasets import get_dataset
from memae_tf.plot import roc_pr_curves, score_histograms

# Metrics in table order; a protocol reports the ones it computes.
METRICS = ("auroc", "aupr", "precision", "recall", "f1")
SCORES_DIR = "scores"
# Settings that only matter to one protocol, left out of the other protocols' reports.
PROTOCOL_SETTINGS = {
    "one-class": ("max_train", "max_test"),
    "tabular": ("train_fraction", "label_column", "normal_classes", "mlbench"),
    "video": ("frame_size", "clip_length", "train_stride", "test_stride", "fill"),
}


def score_file(model: str, unit: str) -> str:
    """Name of the `.npz` (in `SCORES_DIR`) holding a task's test scores and labels."""
    return f"{model}__{unit.replace('=', '')}.npz"


def _unit_key(unit: str) -> tuple[int, str]:
    name, _, number = unit.partition("=")
    return (int(number) if number.isdigit() else -1, name)


def ordered_tasks(tasks: Mapping[str, dict]) -> tuple[list[str], list[str]]:
    """The models of `tasks` in first-seen order, and their units in numeric order."""
    models = list(dict.fromkeys(t["model"] for t in tasks.values()))
    units = sorted({t["unit"] for t in tasks.values()}, key=_unit_key)
    return models, units


def summarise(tasks: Mapping[str, dict]) -> dict[str, dict[str, Any]]:
    """Mean and standard deviation of each metric per model, over its units.

    Args:
        tasks: `results.json`'s `tasks`.

    Returns:
        `{model: {"units": n, "seconds": total, metric: (mean, std), ...}}`.

    Example:

    >>> tasks = {"ae/run=0": {"model": "ae", "unit": "run=0", "metrics": {"f1": 0.5},
    ...          "seconds": 1.0},
    ...          "ae/run=1": {"model": "ae", "unit": "run=1", "metrics": {"f1": 0.7},
    ...          "seconds": 2.0}}
    >>> summary = summarise(tasks)["ae"]
    >>> summary["units"], round(summary["f1"][0], 6), round(summary["f1"][1], 6)
    (2, 0.6, 0.1)
    """
    models, _ = ordered_tasks(tasks)
    summary = {}
    for model in models:
        mine = [t for t in tasks.values() if t["model"] == model]
        row: dict[str, Any] = {"units": len(mine),
                               "seconds": float(sum(t["seconds"] for t in mine))}
        for metric in METRICS:
            values = [t["metrics"][metric] for t in mine if metric in t["metrics"]]
            if values:
                row[metric] = (float(np.mean(values)), float(np.std(values)))
        summary[model] = row
    return summary


def write_csv(path: Path, tasks: Mapping[str, dict]) -> None:
    """One row per task: model, unit, every metric, seconds."""
    metric_names = list(dict.fromkeys(k for t in tasks.values() for k in t["metrics"]))
    models, units = ordered_tasks(tasks)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", "unit", *metric_names, "seconds"])
        for unit in units:
            for model in models:
                task = tasks.get(f"{model}/{unit}")
                if task is not None:
                    writer.writerow([model, unit, *(task["metrics"].get(m, "") for m in
                                                    metric_names), task["seconds"]])


def relevant_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of an experiment that are set and matter to its protocol."""
    other_protocols = {key for protocol, keys in PROTOCOL_SETTINGS.items()
                       if protocol != get_dataset(config["dataset"]).protocol for key in keys}
    return {k: v for k, v in config.items() if v not in (None, [], {}) and k not in other_protocols}


def markdown(config: Mapping[str, Any], tasks: Mapping[str, dict]) -> str:
    """The markdown report: a summary per model and the AUROC of every unit."""
    models, units = ordered_tasks(tasks)
    summary = summarise(tasks)
    metrics = [m for m in METRICS if any(m in row for row in summary.values())]
    settings = ", ".join(f"{k}={v}" for k, v in relevant_settings(config).items())
    lines = [f"# memae experiment: {config['dataset']}", "", f"Settings: {settings}", "",
             "## Summary (mean ± std over units)", "",
             "| model | units | " + " | ".join(metrics) + " | train+score time |",
             "|---|---|" + "---|" * len(metrics) + "---|"]
    for model in models:
        row = summary[model]
        cells = [f"{row[m][0]:.4f} ± {row[m][1]:.4f}" if m in row else "" for m in metrics]
        lines.append(f"| {model} | {row['units']} | " + " | ".join(cells)
                     + f" | {row['seconds'] / 60:.1f} min |")
    lines += ["", "## AUROC per unit", "", "| unit | " + " | ".join(models) + " |",
              "|---|" + "---|" * len(models)]
    for unit in units:
        cells = [f"{tasks[f'{m}/{unit}']['metrics']['auroc']:.4f}" if f"{m}/{unit}" in tasks
                 else "" for m in models]
        lines.append(f"| {unit} | " + " | ".join(cells) + " |")
    if len(units) > 1:
        means = [f"{summary[m]['auroc'][0]:.4f}" for m in models]
        lines.append("| **mean** | " + " | ".join(means) + " |")
    return "\n".join(lines) + "\n"


def write_plots(out: Path, tasks: Mapping[str, dict]) -> None:
    """Per unit: ROC and precision-recall curves of all models, and score histograms."""
    _, units = ordered_tasks(tasks)
    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    for unit in units:
        labels, scores = unit_scores(out, tasks, unit)
        name = unit.replace("=", "")
        figure = roc_pr_curves(labels, scores, title=unit)
        figure.savefig(plots / f"roc_{name}.png", dpi=100)
        figure = score_histograms(labels, scores, title=f"Test score distributions, {unit}")
        figure.savefig(plots / f"hist_{name}.png", dpi=100)


def unit_scores(out: Path, tasks: Mapping[str, dict], unit: str
                ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The test labels of one unit and `{model: test scores}` of the models that ran it."""
    models, _ = ordered_tasks(tasks)
    scores, labels = {}, None
    for model in models:
        if f"{model}/{unit}" in tasks:
            with np.load(Path(out) / SCORES_DIR / score_file(model, unit)) as arrays:
                scores[model], labels = arrays["scores"], arrays["labels"]
    if labels is None:
        raise ValueError(f"No stored scores for unit {unit!r} in {out}.")
    return labels, scores


def write_reports(out: Path, config: Mapping[str, Any], tasks: Mapping[str, dict],
                  plots: bool = True) -> None:
    """Writes `results.csv`, `results.md` and (if `plots`) the PNGs of an experiment folder."""
    out = Path(out)
    if not tasks:
        return
    write_csv(out / "results.csv", tasks)
    (out / "results.md").write_text(markdown(config, tasks))
    if plots:
        write_plots(out, tasks)

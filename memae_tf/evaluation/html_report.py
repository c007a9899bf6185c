"""`memae report`: one self-contained HTML page of a run folder (tables, figures, settings).

Two kinds of run folder are understood:

- an experiment folder (`memae experiment --out RUN`, with `results.json`):
  the summary and per-unit tables, and the ROC / precision-recall curves and
  score histograms of every unit from the stored test scores;
- a training folder (`memae train --out RUN`, with `detector.keras` and
  `train_summary.json`), with labelled test data: metrics at the stored
  threshold, curves, histograms, the most and least anomalous inputs next to
  their reconstructions and error maps, and the memory (decoded items, usage,
  sparsity) when the model has one.

Figures are embedded as base64 PNG (`data:` URLs) and the page has no script
and no external resource, so the file can be mailed or attached as it is.
"""

from __future__ import annotations

import base64
import html
import io
import json
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from memae_tf import plot
from memae_tf.detector import MemAE
from memae_tf.evaluation.experiment import COMMAND_FILE, RESULTS_FILE
from memae_tf.evaluation.metrics import metrics_at_threshold, ranking_metrics
from memae_tf.evaluation.report import (
    METRICS,
    ordered_tasks,
    relevant_settings,
    summarise,
    unit_scores,
)
from memae_tf.inspection import decode_memory_items

TRAIN_SUMMARY = "train_summary.json"
DETECTOR_FILE = "detector.keras"
FIGURE_DPI = 80
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1150px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .5em 0 1.2em; font-size: .92em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th { background: #f2f2f2; } td:first-child, th:first-child { text-align: left; }
pre { background: #f6f6f6; padding: .6em; overflow-x: auto; }
figure { margin: 1em 0; } figcaption { color: #555; font-size: .9em; }
img { max-width: 100%; } table.settings td { text-align: left; }
"""


class HtmlPage:
    """A small HTML document builder: headings, tables, figures, code.

    Args:
        title: The page title (and first heading).
    """

    def __init__(self, title: str) -> None:
        self.title = title
        self.parts: list[str] = [f"<h1>{html.escape(title)}</h1>"]

    def heading(self, text: str) -> None:
        self.parts.append(f"<h2>{html.escape(text)}</h2>")

    def paragraph(self, text: str) -> None:
        self.parts.append(f"<p>{html.escape(text)}</p>")

    def code(self, text: str) -> None:
        self.parts.append(f"<pre><code>{html.escape(text)}</code></pre>")

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Any]],
              css_class: str = "") -> None:
        """A table; floats are written with 4 decimals."""
        def cell(value: Any) -> str:
            return html.escape(f"{value:.4f}" if isinstance(value, float) else str(value))

        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>"
                       for row in rows)
        attribute = f' class="{css_class}"' if css_class else ""
        self.parts.append(f"<table{attribute}><thead><tr>{head}</tr></thead>"
                          f"<tbody>{body}</tbody></table>")

    def settings(self, values: Mapping[str, Any]) -> None:
        """A two-column table of settings (unset ones left out)."""
        self.table(["setting", "value"], [
            (key, json.dumps(value) if isinstance(value, (list, dict, tuple)) else value)
            for key, value in values.items() if value not in (None, [], {}, "")], "settings")

    def figure(self, figure: Figure, caption: str) -> None:
        """Embeds a matplotlib figure as a base64 PNG."""
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=FIGURE_DPI)
        data = base64.b64encode(buffer.getvalue()).decode("ascii")
        self.parts.append(
            f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")

    def render(self) -> str:
        return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style></head>"
                f"<body>{''.join(self.parts)}</body></html>\n")


def _command(run_dir: Path, fallback: str) -> str:
    path = run_dir / COMMAND_FILE
    return path.read_text().strip() if path.is_file() else fallback


def experiment_page(run_dir: str | Path) -> HtmlPage:
    """The report of an experiment folder (`results.json` and its stored scores)."""
    run_dir = Path(run_dir)
    stored = json.loads((run_dir / RESULTS_FILE).read_text())
    config, tasks = stored["config"], stored["tasks"]
    if not tasks:
        raise ValueError(f"{run_dir / RESULTS_FILE} holds no finished task yet.")
    models, units = ordered_tasks(tasks)
    page = HtmlPage(f"memae experiment: {config['dataset']}")
    page.heading("Command")
    page.code(_command(run_dir, f"memae experiment {config['dataset']} --out "
                                f"{shlex.quote(str(run_dir))}  # (recorded settings below)"))
    summary = summarise(tasks)
    metrics = [m for m in METRICS if any(m in row for row in summary.values())]
    page.heading("Summary (mean ± std over units)")
    page.table(["model", "units", *metrics, "train + score time"], [
        (model, summary[model]["units"],
         *(f"{summary[model][m][0]:.4f} ± {summary[model][m][1]:.4f}" if m in summary[model]
           else "" for m in metrics), f"{summary[model]['seconds'] / 60:.1f} min")
        for model in models])
    page.heading("Per unit")
    page.table(["unit", "model", *metrics, "seconds"], [
        (unit, model, *(tasks[f"{model}/{unit}"]["metrics"].get(m, "") for m in metrics),
         tasks[f"{model}/{unit}"]["seconds"])
        for unit in units for model in models if f"{model}/{unit}" in tasks])
    page.heading("Figures")
    for unit in units:
        labels, scores = unit_scores(run_dir, tasks, unit)
        page.figure(plot.roc_pr_curves(labels, scores, title=unit),
                    f"ROC and precision-recall curves, {unit}")
        page.figure(plot.score_histograms(labels, scores, title=unit),
                    f"Test score distributions, {unit}")
    page.heading("Settings")
    page.settings(relevant_settings(config))
    return page


def detector_page(
    run_dir: str | Path,
    x: np.ndarray,
    labels: np.ndarray,
    data_name: str,
    max_items: int = 100,
) -> HtmlPage:
    """The report of a training folder's detector on labelled test data.

    Args:
        run_dir: Folder with `detector.keras` and `train_summary.json`.
        x: Test inputs.
        labels: Their 0/1 labels (1 = anomaly).
        data_name: What `x` is, for the page (e.g. `"mnist test"`).
        max_items: Memory items drawn at most.
    """
    run_dir = Path(run_dir)
    summary_path = run_dir / TRAIN_SUMMARY
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    detector = MemAE.load(run_dir / DETECTOR_FILE)
    labels = np.asarray(labels).astype(np.int64)
    scores = detector.score(x)
    name = detector.variant or "detector"
    page = HtmlPage(f"memae detector: {run_dir.name}")
    page.heading("Command")
    page.code(summary.get("command", f"memae train ... --out {shlex.quote(str(run_dir))}"))
    page.heading("Test metrics")
    metrics = ranking_metrics(labels, scores)
    if detector.threshold_ is not None:
        metrics.update(metrics_at_threshold(labels, scores, detector.threshold_))
    page.paragraph(f"{len(x)} samples of {data_name}, {int(labels.sum())} anomalous.")
    page.table(list(metrics), [list(metrics.values())])
    page.heading("Scores")
    page.figure(plot.roc_pr_curves(labels, {name: scores}), "ROC and precision-recall curves")
    page.figure(plot.score_histograms(labels, {name: scores}, thresholds=detector.threshold_),
                "Test score distributions and the threshold")
    if len(detector.input_shape) in (3, 4):
        page.figure(plot.reconstruction_grid({name: detector}, x, labels),
                    "Most and least anomalous test samples: input, reconstruction, error map")
    if detector.scoring_graph.attention is not None:
        page.heading("Memory")
        reports = {"normal": detector.memory_report(x[labels == 0]),
                   "anomalous": detector.memory_report(x[labels == 1])}
        columns = ("num_queries", "mean_nonzeros", "median_nonzeros", "mean_entropy",
                   "effective_items", "num_unused")
        page.table(["queries", *columns], [[kind, *(report.summary()[c] for c in columns)]
                                           for kind, report in reports.items()])
        page.figure(plot.memory_addressing(reports), "Addressing sparsity and item usage")
        page.figure(plot.memory_items(decode_memory_items(detector.model), reports["normal"],
                                      detector.input_range, max_items=max_items),
                    "Memory items decoded through the decoder (usage by normal test samples)")
    page.heading("Settings")
    page.settings({**summary, "input_range": list(detector.input_range),
                   "config": detector.get_config()})
    return page


def write_report(page: HtmlPage, path: str | Path) -> Path:
    """Writes the page to `path` (atomically) and returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".tmp")
    partial.write_text(page.render(), encoding="utf-8")
    partial.replace(path)
    return path

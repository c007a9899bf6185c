"""Every figure of `memae_tf.plot`: it draws, with the expected axes, artists and labels.

The detectors here are small NumPy stand-ins with the `MemAE` methods the
figures call, so the expected values (which samples rank first, their scores)
are known in closed form.
"""

import numpy as np
import pytest
from matplotlib.figure import Figure

from memae_tf import plot
from memae_tf.inspection import memory_report


class ScaledCopy:
    """Reconstructs `keep × input`: its score is `(1 - keep)² × mean(x²)`."""

    input_range = (0.0, 1.0)

    def __init__(self, keep):
        self.keep = keep

    def preprocess(self, x):
        x = np.asarray(x)
        x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
        return x[..., None] if x.ndim == 3 else x

    def reconstruct(self, x, batch_size=256):
        return self.preprocess(x) * self.keep

    def score_map(self, x, batch_size=256):
        x = self.preprocess(x)
        return (x - self.reconstruct(x)) ** 2

    def score(self, x, batch_size=256):
        return self.score_map(x).mean(axis=(1, 2, 3))


def _colorbars(fig):
    return [ax for ax in fig.axes if hasattr(ax, "_colorbar")]


def _legend_texts(ax):
    return [text.get_text() for text in ax.get_legend().get_texts()]


def _auroc(labels, scores):
    """Mann-Whitney: the share of (anomaly, normal) pairs ranked right (ties count half)."""
    positive, negative = scores[labels == 1], scores[labels == 0]
    greater = (positive[:, None] > negative[None, :]).mean()
    return greater + 0.5 * (positive[:, None] == negative[None, :]).mean()


@pytest.fixture
def scored():
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(60, int), np.ones(40, int)]
    scores = {"memae": rng.normal(labels * 1.5, 1.0), "ae": rng.normal(labels * 0.5, 1.0)}
    return labels, scores


def test_roc_pr_curves_draw_every_detector_with_its_auroc(scored):
    labels, scores = scored
    fig = plot.roc_pr_curves(labels, scores, title="digit 0")
    assert isinstance(fig, Figure)
    roc_ax, pr_ax = fig.axes
    assert (roc_ax.get_title(), pr_ax.get_title()) == ("ROC", "Precision-recall")
    assert roc_ax.get_xlabel() == "false positive rate" and pr_ax.get_xlabel() == "recall"
    assert len(roc_ax.lines) == len(pr_ax.lines) == 3  # two detectors and chance
    texts = _legend_texts(roc_ax)
    for name, values in scores.items():
        assert f"{name} (AUROC {_auroc(labels, values):.3f})" in texts
    assert any(text.startswith("chance (anomaly share 0.40") for text in _legend_texts(pr_ax))
    assert fig.get_suptitle() == "digit 0"


def test_roc_pr_curves_reject_labels_of_another_length(scored):
    labels, scores = scored
    with pytest.raises(ValueError, match=r"Expected 100 labels, one per score\. Received: 99"):
        plot.roc_pr_curves(labels[:99], scores)


def test_score_histograms_draw_the_threshold_of_each_detector(scored):
    labels, scores = scored
    scores = {name: np.r_[values[:-1], 1e3] for name, values in scores.items()}  # one outlier
    fig = plot.score_histograms(labels, scores, thresholds={"memae": 1.25, "ae": 0.5})
    assert [ax.get_title() for ax in fig.axes] == ["memae", "ae"]
    for ax, threshold in zip(fig.axes, (1.25, 0.5), strict=True):
        (line,) = ax.lines
        assert line.get_xdata()[0] == threshold
        assert _legend_texts(ax) == ["normal (n=60)", "anomalous (n=40)",
                                     f"threshold {threshold:.4g}"]
        assert "1 beyond" in ax.get_xlabel() and ax.get_ylabel() == "density"
        assert len(ax.patches) == 2 * 50  # two histograms of 50 bins


def test_score_histograms_on_a_log_axis_have_log_spaced_bins():
    scores = np.geomspace(1e-4, 1.0, 200)
    fig = plot.score_histograms(np.r_[np.zeros(100), np.ones(100)].astype(int), scores,
                                bins=8, log_scale=True)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    widths = [patch.get_width() / patch.get_x() for patch in ax.patches[:8]]
    np.testing.assert_allclose(widths, widths[0])  # equal ratios: geometric bins
    shares = [patch.get_height() for patch in ax.patches[:8]]
    assert sum(shares) == pytest.approx(1.0) and ax.get_ylabel() == "share of samples"
    with pytest.raises(ValueError, match="positive scores"):
        plot.score_histograms(None, np.array([0.0, 1.0]), log_scale=True)


def test_score_histograms_without_labels_show_one_distribution():
    fig = plot.score_histograms(None, np.linspace(0, 1, 30), thresholds=0.9, bins=10)
    assert _legend_texts(fig.axes[0]) == ["scores", "threshold 0.9"]


def test_reconstruction_grid_shows_most_then_least_anomalous_for_each_detector():
    rng = np.random.default_rng(1)
    x = (rng.random((12, 8, 8)) * np.linspace(0.1, 1, 12)[:, None, None] * 255).astype(np.uint8)
    labels = (np.arange(12) >= 8).astype(int)
    detectors = {"memae": ScaledCopy(0.2), "ae": ScaledCopy(0.8)}
    fig = plot.reconstruction_grid(detectors, x, labels, n=3)
    images = [ax for ax in fig.axes if ax not in _colorbars(fig)]
    assert len(images) == 5 * 6  # input + 2 × (reconstruction, error) rows, 3 + 3 columns
    grid = np.array(images).reshape(5, 6)
    assert [ax.get_ylabel() for ax in grid[:, 0]] == [
        "input", "memae\nreconstruction", "memae\nsquared error", "ae\nreconstruction",
        "ae\nsquared error"]
    expected = detectors["memae"].score(x)
    order = np.argsort(expected)
    shown = np.r_[order[::-1][:3], order[:3]]  # brightest images first, darkest last
    assert [ax.get_xlabel() for ax in grid[2]] == [f"score {expected[i]:.4g}" for i in shown]
    assert grid[0, 0].get_title() == "most anomalous #1\nanomaly"
    assert grid[0, 5].get_title() == "least anomalous #3\nnormal"
    (colorbar,) = _colorbars(fig)
    assert colorbar.get_ylabel() == "squared error"
    assert "ranked by memae" in fig.get_suptitle()


def test_reconstruction_grid_needs_images():
    with pytest.raises(ValueError, match=r"needs images .* Received inputs of shape \(4, 5\)"):
        plot.reconstruction_grid({"ae": ScaledCopy(0.5)}, np.zeros((4, 5), np.float32))


@pytest.fixture
def report():
    weights = np.zeros((30, 9))
    rng = np.random.default_rng(2)
    for row in weights:
        row[rng.choice([0, 1, 2, 4, 5, 7], size=2, replace=False)] = 0.5  # 3, 6, 8 unused
    return memory_report(weights)


def test_memory_items_frame_the_unused_items_in_red(report):
    decoded = np.random.default_rng(3).random((9, 6, 6, 1)).astype(np.float32)
    fig = plot.memory_items(decoded, report)
    images = [ax for ax in fig.axes if ax not in _colorbars(fig) and ax.images]
    assert len(images) == 9
    unused = [ax for ax in images if ax.get_title().endswith("unused")]
    assert [ax.get_title() for ax in unused] == ["3 unused", "6 unused", "8 unused"]
    assert all(ax.title.get_color() == "tab:red" for ax in unused)
    assert images[0].get_title() == f"0: {report.usage[0]:.0%}"
    assert "3 never used" in fig.get_suptitle()
    assert len(_colorbars(fig)) == 1


def test_memory_items_of_a_dense_model_are_one_heat_map(report):
    fig = plot.memory_items(np.random.default_rng(4).random((9, 5)), report)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "feature" and ax.get_ylabel() == "memory item"
    labels = {label.get_text(): label.get_color() for label in ax.get_yticklabels()}
    assert list(labels) == [
        f"{i} unused" if i in (3, 6, 8) else f"{i}: {report.usage[i]:.0%}" for i in range(9)]
    assert [text for text, colour in labels.items() if colour == "tab:red"] == [
        "3 unused", "6 unused", "8 unused"]
    assert len(_colorbars(fig)) == 1


def test_memory_items_of_a_large_dense_model_name_only_the_unused_items():
    weights = np.zeros((10, 80))
    weights[:, :40] = 1 / 40  # items 40-79 unused
    fig = plot.memory_items(np.zeros((80, 5)), memory_report(weights))
    texts = [label.get_text() for label in fig.axes[0].get_yticklabels()]
    assert texts == [f"{i} unused" for i in range(40, 80)]


def test_memory_items_reject_a_report_of_another_memory(report):
    with pytest.raises(ValueError, match="9 items, but `decoded` has 4"):
        plot.memory_items(np.zeros((4, 6, 6, 1)), report)


def test_memory_addressing_compares_sets_of_queries(report):
    fig = plot.memory_addressing({"normal": report, "anomalous": report})
    assert [ax.get_title() for ax in fig.axes] == [
        "Addressing sparsity", "Addressing entropy", "Item usage"]
    count_ax, entropy_ax, usage_ax = fig.axes
    assert _legend_texts(count_ax) == ["normal (mean 2.0)", "anomalous (mean 2.0)"]
    assert f"(mean {np.log(2):.2f})" in _legend_texts(entropy_ax)[0]  # two weights of 0.5
    markers = [line for line in usage_ax.lines if line.get_marker() == "x"]
    assert [list(line.get_xdata()) for line in markers] == [[3, 6, 8], [3, 6, 8]]
    assert "normal (3 unused: ×)" in _legend_texts(usage_ax)


def test_regularity_curves_shade_exactly_the_anomalous_frames():
    labels = [np.r_[np.zeros(10), np.ones(5), np.zeros(5), np.ones(3)].astype(int),
              np.zeros(12, int)]
    curves = {"memae": [1 - label * 0.8 for label in labels], "ae": [np.ones(23), np.ones(12)]}
    fig = plot.regularity_curves(curves, labels, videos=["test_000", "test_001"])
    first, second = fig.axes
    extents = [(span.get_x(), span.get_x() + span.get_width()) for span in first.patches]
    assert extents == [(9.5, 14.5), (19.5, 22.5)]
    assert not second.patches
    assert len(first.lines) == 2 and [ax.get_title() for ax in fig.axes] == ["test_000",
                                                                             "test_001"]
    assert _legend_texts(first) == ["anomalous frames (ground truth)", "memae", "ae"]
    assert second.get_xlabel() == "frame" and first.get_ylabel() == "regularity score"


def test_regularity_curves_need_one_value_per_frame():
    with pytest.raises(ValueError, match=r"curve lengths \[4\] for label lengths \[5\]"):
        plot.regularity_curves(np.ones(4), np.zeros(5, int))


def test_error_heatmaps_show_frames_above_their_errors():
    frames = np.random.default_rng(5).integers(0, 256, (20, 16, 16), dtype=np.uint8)
    errors = np.random.default_rng(6).random((20, 16, 16, 1))
    labels = (np.arange(20) >= 15).astype(int)
    fig = plot.error_heatmaps(frames, errors, frame_indices=[2, 16], labels=labels)
    images = [ax for ax in fig.axes if ax not in _colorbars(fig)]
    assert [ax.get_title() for ax in images[:2]] == ["frame 2", "frame 16 (anomalous)"]
    assert images[1].title.get_color() == "tab:red"
    assert images[2].get_xlabel() == f"mean {errors[2].mean():.3g}"
    (colorbar,) = _colorbars(fig)
    assert colorbar.get_ylabel() == "squared error"


def test_figures_save_as_png_and_show_as_png_in_ipython(tmp_path, scored):
    figure = plot.roc_pr_curves(*scored)
    path = tmp_path / "roc.png"
    figure.savefig(path, dpi=60)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert figure._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"  # what a notebook cell displays

"""The memory as pictures: decoded items, and how queries address them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from memae_tf.common.checks import check_positive_int
from memae_tf.plot._common import bare, display_image, new_figure

_UNUSED_COLOUR = "tab:red"
# A dense model's heat map names every item on its axis up to this many items;
# beyond, the labels would overlap and only the unused items are named.
_MAX_NAMED_ROWS = 60


def _usage_label(item: int, share: float) -> str:
    return f"{item}: {share:.0%}" if share >= 0.01 else f"{item}: <1%"


def memory_items(
    decoded: Any,
    report: Any = None,
    input_range: tuple[float, float] = (0.0, 1.0),
    max_items: int = 100,
    title: str | None = None,
) -> Figure:
    """Every memory item decoded through the decoder, as a grid of images.

    Items never used (per `report`) are framed and labelled in red; each
    other item is labelled with the share of queries that use it. Tabular
    models decode an item into a feature row: the items are then drawn as one
    heat map (items × features), labelled the same way on the item axis (up to
    60 items; beyond, only the unused ones are named).

    Args:
        decoded: `(num_items, *input_shape)` as
            `memae_tf.inspection.decode_memory_items` returns it: images
            `(N, H, W, C)`, clips `(N, T, H, W, C)` (centre frame shown) or rows `(N, d)`.
        report: Optional `MemoryReport` of the same memory (its `usage` and
            `unused_items` are shown).
        input_range: Value range of the decoded inputs (the detector's).
        max_items: At most this many items (the first ones) are drawn.
        title: Optional figure title.

    Returns:
        The Figure: one image axes per item (or one heat map) and a colour bar.
    """
    decoded = np.asarray(decoded, dtype=np.float32)
    if decoded.ndim < 2 or len(decoded) == 0:
        raise ValueError(f"`decoded` must be (num_items, ...) with at least one item. "
                         f"Received: shape={decoded.shape}")
    if report is not None and report.num_items != len(decoded):
        raise ValueError(f"`report` describes {report.num_items} items, but `decoded` has "
                         f"{len(decoded)}.")
    max_items = check_positive_int("max_items", max_items)
    shown = min(len(decoded), max_items)
    unused = set() if report is None else {int(i) for i in report.unused_items}
    heading = title or (
        f"Memory items decoded ({shown} of {len(decoded)})" if shown < len(decoded)
        else f"{len(decoded)} memory items decoded")
    if report is not None:
        heading += f"; {len(unused)} never used (red)" if unused else "; all used"

    if decoded.ndim == 2:
        fig = new_figure(8.0, min(2.0 + 0.12 * shown, 12.0))
        ax = fig.subplots()
        image = ax.imshow(decoded[:shown], aspect="auto", cmap="viridis", interpolation="nearest")
        ax.set(xlabel="feature", ylabel="memory item", title=heading)
        if report is not None:
            named = (range(shown) if shown <= _MAX_NAMED_ROWS
                     else sorted(i for i in unused if i < shown))
            ax.set_yticks(named, [f"{i} unused" if i in unused
                                  else _usage_label(i, report.usage[i]) for i in named],
                          fontsize=7)
            for label, i in zip(ax.get_yticklabels(), named, strict=True):
                if i in unused:
                    label.set_color(_UNUSED_COLOUR)
            ax.set_title(heading + "\nlabel: item: share of queries using it")
        fig.colorbar(image, ax=ax, label="decoded feature value")
        return fig

    columns = math.ceil(math.sqrt(shown))
    rows = math.ceil(shown / columns)
    fig = new_figure(1.0 * columns + 1.2, 1.1 * rows + 0.6)
    axes = fig.subplots(rows, columns, squeeze=False)
    mappable = None
    for i, ax in enumerate(axes.ravel()):
        if i >= shown:
            ax.set_axis_off()
            continue
        picture = display_image(decoded[i], input_range)
        mappable = ax.imshow(picture, cmap="gray" if picture.ndim == 2 else None, vmin=0, vmax=1)
        bare(ax)
        if i in unused:
            ax.set_title(f"{i} unused", fontsize=7, color=_UNUSED_COLOUR)
            for spine in ax.spines.values():
                spine.set(color=_UNUSED_COLOUR, linewidth=2.5)
        elif report is not None:
            ax.set_title(_usage_label(i, report.usage[i]), fontsize=7)
        else:
            ax.set_title(str(i), fontsize=7)
    fig.colorbar(mappable, ax=axes, label="decoded value (scaled to [0, 1])", shrink=0.6)
    fig.suptitle(heading + ("; label: item: share of queries using it" if report is not None
                            else ""))
    return fig


def memory_addressing(reports: Any, title: str | None = None) -> Figure:
    """Addressing sparsity and item usage of one or several sets of queries.

    Three panels: the number of items each query uses (non-zero weights), the
    entropy of each query's weights, and the share of queries using each item,
    with the items no query uses marked × below the axis (one row per set,
    in its colour).

    Args:
        reports: A `MemoryReport` (`memae_tf.inspection`), or
            `{name: MemoryReport}` to compare sets of queries, e.g. normal and
            anomalous test samples, or two models.
        title: Optional figure title.

    Returns:
        The Figure, with three axes.
    """
    if not isinstance(reports, Mapping):
        reports = {"queries": reports}
    if not reports:
        raise ValueError("`reports` is empty: expected at least one MemoryReport.")
    fig = new_figure(14.0, 4.0 + 0.25 * math.ceil(len(reports) / 2))
    count_ax, entropy_ax, usage_ax = fig.subplots(1, 3)
    top = max(int(r.nonzeros.max()) for r in reports.values())
    count_bins = np.arange(0, top + 2) - 0.5
    entropy_top = max(float(r.entropy.max()) for r in reports.values())
    entropy_bins = np.linspace(0.0, entropy_top if entropy_top > 0 else 1.0, 41)
    for offset, (name, report) in enumerate(reports.items()):
        summary = report.summary()
        count_ax.hist(report.nonzeros, bins=count_bins, alpha=0.55,
                      weights=np.full(report.num_queries, 1.0 / report.num_queries),
                      label=f"{name} (mean {summary['mean_nonzeros']:.1f})")
        entropy_ax.hist(report.entropy, bins=entropy_bins, alpha=0.55,
                        weights=np.full(report.num_queries, 1.0 / report.num_queries),
                        label=f"{name} (mean {summary['mean_entropy']:.2f})")
        (line,) = usage_ax.plot(np.arange(report.num_items), report.usage,
                                drawstyle="steps-mid",
                                label=f"{name} ({summary['num_unused']} unused: ×)")
        if len(report.unused_items):  # one row of × per report, below the axis, in its colour
            usage_ax.plot(report.unused_items,
                          np.full(len(report.unused_items), -0.04 - 0.03 * offset), "x",
                          color=line.get_color(), markersize=5)
    count_ax.set(title="Addressing sparsity", xlabel="items with non-zero weight per query",
                 ylabel="share of queries")
    entropy_ax.set(title="Addressing entropy", xlabel="entropy of ŵ per query (nats)",
                   ylabel="share of queries")
    usage_ax.set(title="Item usage", xlabel="memory item", ylabel="share of queries using it",
                 ylim=(-0.05 - 0.03 * len(reports), 1.02))
    for ax in (count_ax, entropy_ax, usage_ax):
        # Below the axes: inside, a legend of several reports hides the bars.
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=min(len(reports), 2),
                  fontsize="small", frameon=False)
    if title:
        fig.suptitle(title)
    return fig

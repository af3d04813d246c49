"""The figure of a one-shot search: per-edge operation probabilities per epoch, the derived
arch's accuracy per epoch (one-shot, table, retrained) and the collapse indicators.

:func:`plot_result` redraws a finished search's figure from its
:class:`~nasforge.search.oneshot.loop.SearchResult` (the loop draws it after every search;
the CLI again after a retraining, with the trained accuracy); :func:`plot_search` is the
NB201 figure and :func:`plot_darts_search` the DARTS-space one (each space's adapter draws
with its own, :mod:`nasforge.search.oneshot.spaces`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.io import atomic_save_figure
from nasforge.spaces.nb201 import EDGES, OPS

if TYPE_CHECKING:
    from nasforge.search.oneshot.loop import SearchResult

__all__ = ["plot_darts_search", "plot_result", "plot_search", "plot_task_search"]


def plot_result(
    result: SearchResult,
    trained: dict[str, float] | None = None,
    plotter: Callable[..., Any] | None = None,
) -> Path | None:
    """(Re)draw ``result``'s search plot (``result.paths["png"]``; None when it has none):
    warm-up epochs from its config, the table's accuracy of the derived arch when known, and
    ``trained`` (label -> accuracy, e.g. of a retraining done after the search).
    ``plotter`` is the method's ``plot`` (its space's figure); default the NB201 one."""
    png = result.paths.get("png")
    if not png:
        return None
    known: dict[str, float] = {}
    table = result.table
    if table is not None and table.get("test_acc") is not None:
        known[f"table {table['dataset']} {table['hp']}-epoch test"] = float(table["test_acc"])
    known.update(trained or {})
    draw = plotter or plot_search
    return draw(
        result.epochs,
        png,
        title=f"{result.algo} on {result.dataset}",
        warmup=int(result.config.get("warmup_epochs", 0) or 0),
        trained=known,
    )


def plot_search(
    records: list[dict[str, Any]],
    path: str | Path,
    *,
    title: str = "",
    warmup: int = 0,
    trained: dict[str, float] | None = None,
) -> Path:
    """Per-edge op probabilities per epoch (6 panels) + derived-arch accuracy per epoch.

    ``warmup`` epochs (weights only, no architecture step) are shaded in every panel;
    ``trained`` maps a label to an accuracy of the final derived arch after real training
    (the table's, or a retraining's), drawn as dashed lines on the accuracy panel.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    epochs = [r["epoch"] for r in records]
    probs = np.asarray([r["probs"] for r in records], dtype=np.float64)  # (T, 6, 5)
    fig = plt.figure(figsize=(13, 9))
    grid = fig.add_gridspec(3, 3)

    def shade_warmup(ax: Any, label: bool = False) -> None:
        if warmup > 0:
            ax.axvspan(
                0.5,
                warmup + 0.5,
                color="grey",
                alpha=0.15,
                label=f"warm-up ({warmup} ep.)" if label else None,
            )

    # One y-range for all edges, fitted to the data: early in a search the probabilities
    # sit near 1/5 and a fixed 0..1 axis would hide their evolution.
    top = min(1.0, float(probs.max()) * 1.15 + 0.02) if len(records) else 1.0
    for e, (dst, src) in enumerate(EDGES):
        ax = fig.add_subplot(grid[e // 3, e % 3])
        for k, op in enumerate(OPS):
            if len(records):
                ax.plot(epochs, probs[:, e, k], label=op, marker="." if len(epochs) < 30 else None)
        shade_warmup(ax, label=e == 0)
        ax.set_title(f"edge {dst}<-{src}")
        ax.set_ylim(0, top)
        ax.set_xlabel("epoch")
        ax.set_ylabel("probability")
        if e == 0:
            ax.legend(fontsize=7)
    ax = fig.add_subplot(grid[2, :2])
    if records:
        ax.plot(
            epochs,
            [r["derived_valid_acc"] for r in records],
            marker=".",
            label="derived arch, one-shot valid acc",
        )
        ax.plot(
            epochs,
            [r["valid_acc"] for r in records],
            marker=".",
            linestyle="--",
            label="supernet valid acc",
        )
        table_accs = [r.get("table_acc") for r in records]
        if any(a is not None for a in table_accs):
            ax.plot(
                epochs,
                [np.nan if a is None else a for a in table_accs],
                marker="o",
                label="derived arch, table test acc",
            )
    for k, (label, acc) in enumerate((trained or {}).items()):
        if acc is not None and math.isfinite(acc):
            ax.axhline(
                acc,
                color=f"C{4 + k}",
                linestyle="--",
                linewidth=1.2,
                label=f"final arch, {label}: {acc:.2f}%",
            )
    shade_warmup(ax, label=True)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.legend(fontsize=8)
    ax.set_title("derived architecture accuracy")
    ax = fig.add_subplot(grid[2, 2])
    if records:
        ax.plot(epochs, [r["skip_share"] for r in records], marker=".", label="skip share")
        ax.plot(
            epochs,
            [float(np.mean(r["entropy"])) / math.log(len(OPS)) for r in records],
            marker=".",
            label="mean entropy / log 5",
        )
    shade_warmup(ax)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("epoch")
    ax.legend(fontsize=8)
    ax.set_title("collapse indicators")
    from matplotlib.ticker import MaxNLocator

    for a in fig.axes:  # epochs are counted: integer ticks
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(title)
    fig.tight_layout()
    return atomic_save_figure(fig, path, dpi=90)


def plot_darts_search(records: list[dict[str, Any]], path: str | Path, *, title: str = "") -> Path:
    """Per cell type, each op's probability averaged over the 14 edges per epoch and the last
    epoch's per-edge probabilities; the derived genotype's one-shot accuracy and the
    collapse indicators (normal-cell skip share, mean entropy)."""
    import matplotlib

    from nasforge.nn.darts_supernet import NUM_CELL_EDGES, NUM_DARTS_OPS
    from nasforge.spaces.darts import PRIMITIVES

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    epochs = [r["epoch"] for r in records]
    probs = np.asarray([r["probs"] for r in records], dtype=np.float64).reshape(
        len(records), 2, NUM_CELL_EDGES, NUM_DARTS_OPS
    )
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    for c, cell in enumerate(("normal", "reduce")):
        ax = axes[c, 0]
        for k, op in enumerate(PRIMITIVES):
            if records:
                ax.plot(epochs, probs[:, c, :, k].mean(axis=1), label=op, marker=".")
        ax.set_title(f"{cell} cell: op probability (mean over edges)")
        ax.set_xlabel("epoch")
        if c == 0:
            ax.legend(fontsize=7)
        ax = axes[c, 1]
        if records:
            im = ax.imshow(probs[-1, c], aspect="auto", cmap="viridis")
            fig.colorbar(im, ax=ax)
        ax.set_xticks(range(NUM_DARTS_OPS), PRIMITIVES, rotation=45, ha="right", fontsize=7)
        ax.set_ylabel("edge")
        ax.set_title(f"{cell} cell: last epoch's probabilities")
    ax = axes[0, 2]
    if records:
        ax.plot(epochs, [r["derived_valid_acc"] for r in records], marker=".", label="derived")
        ax.plot(epochs, [r["valid_acc"] for r in records], marker=".", ls="--", label="supernet")
    ax.set_xlabel("epoch")
    ax.set_ylabel("one-shot valid accuracy (%)")
    ax.legend(fontsize=8)
    ax = axes[1, 2]
    if records:
        ax.plot(epochs, [r["skip_share"] for r in records], marker=".", label="normal skip share")
        ent = [float(np.mean(r["entropy"])) / np.log(NUM_DARTS_OPS) for r in records]
        ax.plot(epochs, ent, marker=".", label="mean entropy / log 8")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("epoch")
    ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return atomic_save_figure(fig, path, dpi=80)


def plot_task_search(
    records: list[dict[str, Any]],
    path: str | Path,
    *,
    metric: str,
    unit: str = "",
    ops: tuple[str, ...] = (),
    title: str = "",
    warmup: int = 0,
) -> Path:
    """The figure of a one-shot search on another task than classification, for any space:
    the last epoch's op probabilities per row (a rows x ops map) and, per epoch, the task's
    ``metric`` on the valid split for the supernet's search-mode forward and for the derived
    arch (``valid_<metric>`` / ``derived_valid_<metric>`` of the records)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    path = Path(path)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), width_ratios=(1, 1.4))
    if records:
        probs = np.asarray(records[-1]["probs"], dtype=np.float64)
        im = left.imshow(probs, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0)
        left.set_xticks(range(probs.shape[1]))
        left.set_xticklabels(
            ops or [str(k) for k in range(probs.shape[1])], rotation=45, ha="right"
        )
        left.set_yticks(range(probs.shape[0]))
        left.set_ylabel("row (edge)")
        fig.colorbar(im, ax=left, label="probability")
        epochs = [r["epoch"] for r in records]
        for key, label, style in (
            (f"derived_valid_{metric}", "derived arch", "-"),
            (f"valid_{metric}", "supernet (search-mode forward)", "--"),
        ):
            values = [r.get(key) for r in records]
            if any(v is not None for v in values):
                right.plot(
                    epochs,
                    [np.nan if v is None else v for v in values],
                    marker=".",
                    linestyle=style,
                    label=label,
                )
        if warmup > 0:
            right.axvspan(
                0.5, warmup + 0.5, color="grey", alpha=0.15, label=f"warm-up ({warmup} ep.)"
            )
        right.legend(fontsize=8)
    left.set_title(f"op probabilities, epoch {records[-1]['epoch'] if records else 0}")
    right.set_xlabel("epoch")
    right.set_ylabel(f"valid {metric}" + (f" ({unit})" if unit else ""))
    right.set_title(f"derived architecture {metric}")
    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    right.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return atomic_save_figure(fig, path, dpi=90)

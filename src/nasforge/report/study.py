"""Plots and result files of rank-correlation studies (:mod:`nasforge.study.ranking`):
``ranking.json`` + ``ranking.png`` of one study, and the JSON + figure comparing several
sharing variants. Every file is written atomically.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.io import atomic_save_figure, atomic_write_json

__all__ = [
    "PLOT_NAME",
    "RESULT_NAME",
    "plot_ranking",
    "plot_variants",
    "save_study",
    "save_variants",
]

RESULT_NAME = "ranking.json"
PLOT_NAME = "ranking.png"


def save_study(out_dir: Path, result: dict[str, Any], *, plot: bool = True) -> Path:
    """Write one study's ``ranking.json`` (and ``ranking.png``) into ``out_dir``."""
    path = atomic_write_json(out_dir / RESULT_NAME, result)
    if plot:
        plot_ranking(result, out_dir / PLOT_NAME)
    return path


def save_variants(path: Path, combined: dict[str, Any], *, plot: bool = True) -> Path:
    """Write the comparison of several studies to ``path`` (and its figure, ``.png``)."""
    atomic_write_json(path, combined)
    if plot:
        plot_variants(combined, path.with_suffix(".png"))
    return path


def plot_ranking(result: dict[str, Any], path: str | Path) -> Path:
    """Left: tau / rho / consecutive tau over the snapshots; right: one-shot vs true
    accuracy at the last snapshot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    snaps = result["snapshots"]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4))
    xs = np.arange(len(snaps))
    for key, label in (
        ("tau", "Kendall tau"),
        ("rho", "Spearman rho"),
        ("tau_prev", "tau vs previous"),
    ):
        ax.plot(xs, [np.nan if s[key] is None else s[key] for s in snaps], marker=".", label=label)
    ax.set_xticks(xs, [s["label"] for s in snaps], rotation=60, fontsize=7)
    ax.set_ylim(-1, 1)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_ylabel("rank correlation")
    ax.set_title(f"supernet ranking vs table ({result['groups']} supernet(s))")
    ax.legend(fontsize=8)
    if snaps:
        bx.scatter(result["truth"], snaps[-1]["oneshot_acc"], s=12, c=result["parts"], cmap="tab10")
    bx.set_xlabel(f"table {result['table']['truth']} (%)")
    bx.set_ylabel("one-shot valid acc (%)")
    bx.set_title(f"last snapshot: tau = {snaps[-1]['tau']:.3f}" if snaps else "no snapshot")
    fig.tight_layout()
    return atomic_save_figure(fig, Path(path), dpi=100)


def plot_variants(combined: dict[str, Any], path: str | Path) -> Path:
    """Kendall tau, Spearman rho and tau between consecutive snapshots over training, one
    line per sharing variant; the truth's seed-to-seed tau as a reference line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (
        ("tau", "Kendall tau vs table"),
        ("rho", "Spearman rho vs table"),
        ("tau_prev", "tau vs previous snapshot"),
    )
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2), sharex=True)
    labels = combined["variants"][0]["labels"]
    xs = np.arange(len(labels))
    noise = combined.get("truth_noise")
    names = list(dict.fromkeys(v["variant"] for v in combined["variants"]))
    colours = {n: f"C{i % 10}" for i, n in enumerate(names)}
    seeds = sorted({v["seed"] for v in combined["variants"]})
    styles = ("-", ":", "-.", "--")
    for ax, (key, title) in zip(axes, panels, strict=True):
        for v in combined["variants"]:
            ys = [np.nan if y is None else y for y in v[key]]
            # One colour per variant, one line style per study seed.
            ax.plot(
                xs[: len(ys)],
                ys,
                marker=".",
                color=colours[v["variant"]],
                ls=styles[seeds.index(v["seed"]) % len(styles)],
                label=v["variant"] + (f", seed {v['seed']}" if len(seeds) > 1 else ""),
            )
        if key == "tau" and noise:
            ax.axhline(noise["tau"], color="black", ls="--", lw=1, label="table seed vs seed (tau)")
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_xticks(xs, labels, rotation=60, fontsize=7)
        ax.set_ylim(-0.5, 1)
        ax.set_title(title)
        ax.set_xlabel("snapshot (epoch e, step s of the last epoch)")
    axes[0].set_ylabel("rank correlation")
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=4, fontsize=8, frameon=False)
    sup = combined["supernet"]
    fig.suptitle(
        f"Supernet ranking of {combined['archs']} NB201 archs vs a table trained on the same "
        f"data ({combined['dataset']}, C={sup['C']}, N={sup['N']}, {sup['epochs']} epochs)",
        fontsize=10,
    )
    rows = math.ceil(len(handles) / 4)
    fig.tight_layout(rect=(0, 0.04 + 0.045 * rows, 1, 1))  # room for the legend below
    return atomic_save_figure(fig, Path(path), dpi=110)

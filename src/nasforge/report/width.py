"""Plots and result files of width searches (:mod:`nasforge.search.width.protocol`).

* ``search.json`` + ``search_front.png`` (supernet accuracy vs FLOPs of every evaluated
  configuration, the winner and uniform width scaling) + ``supernet.pt``:
  :func:`save_search_record`;
* ``compare.json`` + ``compare.png`` (retrained test accuracy of each method against MFLOPs
  or measured latency): :func:`save_compare_record`.

Every file is written atomically.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from nasforge.io import atomic_save_figure, atomic_torch_save, atomic_write_json

__all__ = [
    "COMPARE_FILE",
    "SEARCH_FILE",
    "plot_compare",
    "plot_search_front",
    "save_compare_record",
    "save_search_record",
]

#: The record of ``nasforge width search`` in its output directory.
SEARCH_FILE = "search.json"
#: The record of ``nasforge width compare`` in its output directory.
COMPARE_FILE = "compare.json"


def _save_flops_plot(
    path: Path,
    draw: Callable[[Any], None],
    *,
    ylabel: str,
    title: str,
    xlabel: str = "MFLOPs",
) -> Path:
    """One accuracy-vs-MFLOPs figure: ``draw(ax)`` adds the labelled series; saved atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    try:
        draw(ax)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        return atomic_save_figure(fig, path)
    finally:
        plt.close(fig)


def plot_search_front(record: dict[str, Any], path: Path) -> Path:
    """Supernet accuracy vs FLOPs: evaluated configurations, the winner, uniform scaling."""
    res = record["result"]

    def draw(ax: Any) -> None:
        ev = [e for e in res["evaluated"] if "score" in e]
        ax.scatter([e["flops_m"] for e in ev], [e["score"] for e in ev], s=12, alpha=0.5,
                   label=f"searched widths ({res['algorithm']})")  # fmt: skip
        uni = record["uniform_front"]
        ax.plot([u["flops_m"] for u in uni], [u["supernet_acc"] for u in uni], "o-", color="C1",
                label="uniform width scaling")  # fmt: skip
        ax.scatter([res["flops_m"]], [res["supernet_acc"]], marker="*", s=160, color="C3",
                   zorder=5, label="best within budget")  # fmt: skip
        if res["budget_mflops"] is not None:
            ax.axvline(res["budget_mflops"], color="gray", ls="--", lw=1, label="FLOPs budget")

    return _save_flops_plot(
        path,
        draw,
        ylabel="supernet validation accuracy (%)",
        title=f"{res['backbone']} on {record['dataset']}: accuracy vs FLOPs",
    )


def plot_compare(record: dict[str, Any], path: Path) -> Path:
    """Retrained test accuracy of each method across budgets, against MFLOPs (FLOPs budgets)
    or measured latency (latency targets)."""
    latency = record.get("mode") == "latency"
    key = "measured_latency_ms" if latency else "flops_m"

    def draw(ax: Any) -> None:
        for i, (method, rows) in enumerate(record["methods"].items()):
            pts = sorted((r[key], r["test_acc"]) for r in rows if r["test_acc"] is not None)
            if pts:
                ax.plot(*zip(*pts, strict=False), "o-", color=f"C{i}", label=method)
        for t in record.get("latency_targets_ms") or []:
            ax.axvline(t, color="gray", ls="--", lw=0.8)

    what = "at equal measured latency" if latency else "searched vs uniform widths"
    return _save_flops_plot(
        path,
        draw,
        ylabel="retrained test accuracy (%)",
        title=f"{record['backbone']} on {record['dataset']}: {what}",
        xlabel=f"measured latency (ms per image, {record['device']})" if latency else "MFLOPs",
    )


def save_search_record(
    out_dir: Path, record: dict[str, Any], supernet: dict[str, Any] | None = None
) -> Path:
    """Write a width search's ``search.json``; with the trained ``supernet`` (its weights and
    identity: none for uniform scaling) also ``search_front.png`` and ``supernet.pt``."""
    path = atomic_write_json(out_dir / SEARCH_FILE, record)
    if supernet is not None:
        plot_search_front(record, out_dir / "search_front.png")
        atomic_torch_save(supernet, out_dir / "supernet.pt")
    return path


def save_compare_record(out_dir: Path, record: dict[str, Any]) -> Path:
    """Write a width comparison's ``compare.json`` and ``compare.png``."""
    path = atomic_write_json(out_dir / COMPARE_FILE, record)
    plot_compare(record, out_dir / "compare.png")
    return path

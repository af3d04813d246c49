"""How well does a weight-sharing supernet rank architectures? (In the spirit of Zhang et
al., "Deeper Insights into Weight Sharing in Neural Architecture Search", 2020.)

A uniform single-path supernet (RSPS' weight training) is trained with the one-shot loop;
a fixed set of architectures -- archs of a table, so that each has a ground truth -- is
scored with the shared weights (one-shot valid accuracy on fixed validation batches) at
the end of every epoch and, over the last epoch, every ``step_every`` steps. Each snapshot
is compared with the table: Kendall's tau-b and Spearman's rho, tau between consecutive
snapshots (ranking stability), and where the supernet's top-k land in the true ranking.

Reduced sharing: ``partition="edge"`` trains one supernet per op of ``edge`` (each only
samples archs with that op there, 5 supernets); ``partition="random"`` splits the space
into ``groups`` parts by a seeded random assignment of arch indices (one supernet per part,
archs sampled by rejection). Each arch is scored by its own part's supernet. Every supernet
gets the full number of epochs, so a partitioned study costs ``groups`` times more.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.errors import SearchError
from nasforge.spaces.nb201 import NUM_ARCHS, NUM_EDGES, NUM_OPS, Arch

PARTITIONS = ("none", "edge", "random")
RESULT_NAME = "ranking.json"
PLOT_NAME = "ranking.png"


# -- rank statistics ---------------------------------------------------------------------------
def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b (ties in either variable handled as scipy's ``kendalltau``); NaN
    when one variable is constant."""
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise SearchError(f"kendall_tau needs two equal-length vectors, got {a.shape}, {b.shape}")
    da = np.sign(a[:, None] - a[None, :])
    db = np.sign(b[:, None] - b[None, :])
    iu = np.triu_indices(len(a), k=1)
    sa, sb = da[iu], db[iu]
    concordant_minus_discordant = float((sa * sb).sum())
    na, nb = float((sa != 0).sum()), float((sb != 0).sum())
    if na == 0 or nb == 0:
        return float("nan")
    return concordant_minus_discordant / math.sqrt(na * nb)


def _average_ranks(v: np.ndarray) -> np.ndarray:
    order = np.argsort(v, kind="stable")
    ranks = np.empty(len(v))
    ranks[order] = np.arange(1, len(v) + 1)
    for value in np.unique(v):
        tie = v == value
        ranks[tie] = ranks[tie].mean()
    return ranks


def spearman_rho(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho: Pearson correlation of the average ranks; NaN when one is constant."""
    ra = _average_ranks(np.asarray(x, dtype=np.float64))
    rb = _average_ranks(np.asarray(y, dtype=np.float64))
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def top_k_truth_ranks(pred: Sequence[float], truth: Sequence[float], k: int) -> list[int]:
    """The true ranks (1 = best of the set) of the ``k`` archs the prediction ranks best."""
    p, t = np.asarray(pred, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    true_rank = np.empty(len(t), dtype=np.int64)
    true_rank[np.argsort(-t, kind="stable")] = np.arange(1, len(t) + 1)
    return [int(true_rank[i]) for i in np.argsort(-p, kind="stable")[:k]]


def rank_metrics(
    pred: Sequence[float], truth: Sequence[float], previous: Sequence[float] | None, k: int
) -> dict[str, Any]:
    """tau / rho against the truth, tau against the previous snapshot, top-k true ranks."""
    ranks = top_k_truth_ranks(pred, truth, k)
    return {
        "tau": kendall_tau(pred, truth),
        "rho": spearman_rho(pred, truth),
        "tau_prev": None if previous is None else kendall_tau(pred, previous),
        "topk_true_ranks": ranks,
        "topk_best_true_rank": min(ranks) if ranks else None,
    }


# -- the study ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class RankingConfig:
    """Settings of a ranking study (the supernet's own are ``supernet`` overrides)."""

    num_archs: int = 50
    partition: str = "none"
    edge: int = 0
    groups: int = 2
    step_every: int = 5
    eval_batches: int = 2
    top_k: int = 5
    truth: str = "test_acc"

    def __post_init__(self) -> None:
        if self.partition not in PARTITIONS:
            raise SearchError(f"partition={self.partition!r} invalid; expected one of {PARTITIONS}")
        if not 0 <= self.edge < NUM_EDGES:
            raise SearchError(f"edge={self.edge} invalid; expected 0..{NUM_EDGES - 1}")
        for name in ("num_archs", "groups", "step_every", "eval_batches", "top_k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SearchError(f"{name}={value!r} invalid; expected an int >= 1")
        if self.num_archs < 2:
            raise SearchError(f"num_archs={self.num_archs} invalid; expected >= 2 to rank")
        if self.truth not in ("test_acc", "valid_acc"):
            raise SearchError(f"truth={self.truth!r} invalid; expected 'test_acc' or 'valid_acc'")


def part_functions(cfg: RankingConfig, seed: int) -> tuple[int, Callable[[Arch], int]]:
    """(number of supernets, the part an arch belongs to)."""
    if cfg.partition == "none":
        return 1, lambda arch: 0
    if cfg.partition == "edge":
        return NUM_OPS, lambda arch: arch.op_ids[cfg.edge]
    assignment = np.random.default_rng(seed).permutation(NUM_ARCHS) % cfg.groups
    return cfg.groups, lambda arch: int(assignment[arch.to_index()])


def run_ranking_study(
    bench: Any,
    data: Any,
    out_dir: str | Path,
    *,
    config: RankingConfig | None = None,
    supernet: dict[str, Any] | None = None,
    seed: int = 0,
    bench_dataset: str | None = None,
    bench_hp: str | None = None,
    plot: bool = True,
) -> dict[str, Any]:
    """Run the study; write ``ranking.json`` (and ``ranking.png``) into ``out_dir``."""
    from nasforge.data import DeviceLoader
    from nasforge.io import atomic_write_json, to_jsonable
    from nasforge.search.oneshot.loop import resolve_table, run_search, search_splits, table_lookup
    from nasforge.search.oneshot.rsps import RSPS

    cfg = config or RankingConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ds, hp = resolve_table(bench, bench_dataset or data.name, bench_hp)
    pool = list(bench)
    if len(pool) < 2:
        raise SearchError(f"the table holds {len(pool)} arch(s); expected >= 2 to rank")
    pick = np.random.default_rng(seed).permutation(len(pool))[: cfg.num_archs]
    archs = [pool[i] for i in sorted(pick)]
    truth = np.array([table_lookup(bench, a, ds, hp)[cfg.truth] for a in archs], dtype=float)
    keep = np.isfinite(truth)
    archs, truth = [a for a, k in zip(archs, keep, strict=True) if k], truth[keep]
    if len(archs) < 2:
        raise SearchError(f"fewer than 2 of the sampled archs have a {cfg.truth} in the table")
    groups, part_of = part_functions(cfg, seed)
    parts = [part_of(a) for a in archs]

    class PartSupernet(RSPS):
        """RSPS weight training restricted to one part of the space."""

        part = 0

        def train_step(self, base, arch, epoch):  # type: ignore[no-untyped-def]
            assert self.supernet is not None
            while True:
                ids = self.rng.integers(0, NUM_OPS, size=NUM_EDGES).tolist()
                if part_of(Arch.from_op_ids(ids)) == self.part:
                    break
            net = self.supernet
            return self.weight_step(lambda x: net(x, index=ids), base)

        def derive(self, ctx):  # type: ignore[no-untyped-def]
            # The study scores its own arch set; the loop's derived arch is a placeholder.
            members = [a for a, p in zip(archs, parts, strict=True) if p == self.part]
            return members[0] if members else Arch.from_op_ids([0] * NUM_EDGES)

    _, valid_split = search_splits(data, seed)
    overrides = {"select_num": 1, "valid_batches": 1, **(supernet or {})}
    snapshots: list[dict[str, Any]] = []
    per_group: list[list[tuple[str, np.ndarray]]] = []
    for g in range(groups):
        method = PartSupernet(**overrides)
        method.part = g
        eval_loader = DeviceLoader(valid_split, data, method.config.eval_batch_size, train=False)
        batches = [b for _, b in zip(range(cfg.eval_batches), eval_loader, strict=False)]
        members = [i for i, p in enumerate(parts) if p == g]
        timeline: list[tuple[str, np.ndarray]] = []
        info: dict[str, Any] = {}

        def score(
            label: str, m=method, members=members, timeline=timeline, batches=batches
        ) -> None:  # type: ignore[no-untyped-def]
            accs = np.array([m.evaluate_arch(archs[i], batches) for i in members])
            timeline.append((label, accs))

        def callback(event: str, payload: dict[str, Any], info=info, score=score, m=method) -> None:  # type: ignore[no-untyped-def]
            if event == "start":
                info.update(payload)
            elif event == "step":
                last = payload["epoch"] == m.config.epochs - 1
                step = payload["step"] + 1
                if last and step % cfg.step_every == 0 and step < info["steps"]:
                    score(f"e{payload['epoch'] + 1}s{step}")
            elif event == "epoch":
                score(f"e{payload['epoch']}")

        if members:
            run_search(
                method,
                data,
                out / f"supernet{g}",
                seed=seed + g,
                plot=False,
                resume=False,
                callback=callback,
            )
        per_group.append(timeline)
    labels = next(([lab for lab, _ in t] for t in per_group if t), [])
    previous = None
    for j, label in enumerate(labels):
        pred = np.zeros(len(archs))
        for g, timeline in enumerate(per_group):
            members = [i for i, p in enumerate(parts) if p == g]
            if members:
                pred[members] = timeline[j][1]
        metrics = rank_metrics(pred, truth, previous, min(cfg.top_k, len(archs)))
        snapshots.append({"label": label, "oneshot_acc": pred.tolist(), **metrics})
        previous = pred
    result = to_jsonable(
        {
            "config": asdict(cfg),
            "supernet": method.config.to_dict(),
            "seed": seed,
            "dataset": data.name,
            "table": {"dataset": ds, "hp": hp, "truth": cfg.truth},
            "groups": groups,
            "archs": [a.to_string() for a in archs],
            "parts": parts,
            "truth": truth.tolist(),
            "snapshots": snapshots,
        }
    )
    atomic_write_json(out / RESULT_NAME, result)
    if plot:
        plot_ranking(result, out / PLOT_NAME)
    return result


def plot_ranking(result: dict[str, Any], path: str | Path) -> Path:
    """Left: tau / rho / consecutive tau over the snapshots; right: one-shot vs true
    accuracy at the last snapshot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nasforge.io import atomic_save_figure

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

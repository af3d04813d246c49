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
into ``groups`` parts by a seeded random assignment of arch indices. Each arch is trained
and scored by its own part's supernet. The parts' supernets train in lock-step in one
loop (:class:`PartitionedRSPS`), each getting every step, so a study with g parts costs g
times a shared one. ``prefix`` sits between the two extremes: the g supernets share the
stem and their first ``prefix`` cells, and only the rest of the network is per part.
:func:`compare_variants` puts several studies (sharing variants) in one JSON and figure.
"""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nasforge.errors import SearchError
from nasforge.nn.supernet import NB201Supernet, check_prefix, share_prefix
from nasforge.report.study import save_study, save_variants
from nasforge.search.oneshot.base import Batch, SearchContext, StepStats, step_stats
from nasforge.search.oneshot.rsps import RSPS
from nasforge.spaces.nb201 import NUM_ARCHS, NUM_EDGES, NUM_OPS, Arch

PARTITIONS = ("none", "edge", "random")


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
    """Settings of a ranking study (the supernet's own are ``supernet`` overrides).

    ``prefix`` (None = the parts' supernets share nothing) shares the stem and the first
    ``prefix`` modules of the skeleton's cell list (searched cells and reduction blocks, in
    network order) between the parts' supernets: :func:`~nasforge.nn.supernet.share_prefix`.
    """

    num_archs: int = 50
    partition: str = "none"
    edge: int = 0
    groups: int = 2
    prefix: int | None = None
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
        if self.prefix is not None:
            if isinstance(self.prefix, bool) or not isinstance(self.prefix, int) or self.prefix < 0:
                raise SearchError(f"prefix={self.prefix!r} invalid; expected None or an int >= 0")
            if self.partition == "none":
                raise SearchError(
                    "prefix sharing needs several supernets; expected partition 'edge' or "
                    "'random' with prefix, got partition='none'"
                )

    def label(self) -> str:
        """A short name of the sharing variant (figure legends, tables)."""
        if self.partition == "none":
            return "full sharing"
        parts = (
            f"edge {self.edge} (5 parts)"
            if self.partition == "edge"
            else (f"random {self.groups} parts")
        )
        if self.prefix is None:
            return f"{parts}, independent"
        shared = "stem" if self.prefix == 0 else f"stem + {self.prefix} cell(s)"
        return f"{parts}, shared {shared}"


def part_functions(cfg: RankingConfig, seed: int) -> tuple[int, Callable[[Arch], int]]:
    """(number of supernets, the part an arch belongs to)."""
    if cfg.partition == "none":
        return 1, lambda arch: 0
    if cfg.partition == "edge":
        return NUM_OPS, lambda arch: arch.op_ids[cfg.edge]
    assignment = np.random.default_rng(seed).permutation(NUM_ARCHS) % cfg.groups
    return cfg.groups, lambda arch: int(assignment[arch.to_index()])


class PartitionedSupernet(nn.Module):
    """One NB201 supernet per part of the space, each arch run through its part's; with
    ``prefix`` the members share the stem and first ``prefix`` cells (module objects)."""

    def __init__(
        self,
        members: Sequence[NB201Supernet],
        part_of: Callable[[Arch], int],
        prefix: int | None = None,
    ) -> None:
        super().__init__()
        if prefix is not None:
            share_prefix(members, prefix)
        self.members = nn.ModuleList(members)
        self.part_of = part_of

    def member(self, index: Sequence[int]) -> NB201Supernet:
        """The supernet of the arch with op ids ``index``."""
        return self.members[self.part_of(Arch.from_op_ids([int(i) for i in index]))]  # type: ignore[return-value]

    def forward(self, x: torch.Tensor, *, index: Sequence[int]) -> torch.Tensor:
        """Logits of the single path ``index`` through its part's supernet."""
        return self.member(index)(x, index=index)

    def forward_arch(self, x: torch.Tensor, arch: Arch | str | int) -> torch.Tensor:
        """Logits of ``arch``'s single path through its part's supernet."""
        return self(x, index=Arch.parse(arch).op_ids)


class PartitionedRSPS(RSPS):
    """RSPS weight training of the ``groups`` supernets of a :class:`PartitionedSupernet`
    in lock-step: every step draws one uniform arch of each part (rejection sampling) and
    takes one SGD step on the sum of their losses on the step's batch. A member's own
    weights thus get exactly the update (and weight decay) of an RSPS step restricted to
    its part; a shared prefix gets the sum of the members' gradients. With one part this
    is RSPS' step. The gradient-clipping norm covers all members together (as one model).
    """

    def __init__(
        self,
        groups: int,
        part_of: Callable[[Arch], int],
        prefix: int | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__(**overrides)
        if prefix is not None:  # checked here, before any training
            check_prefix(prefix, self.config.C, self.config.N)
        self.groups, self.part_of, self.prefix = groups, part_of, prefix

    def build_supernet(self, num_classes: int) -> nn.Module:
        build = super().build_supernet  # (a comprehension has no zero-argument super)
        members = [build(num_classes) for _ in range(self.groups)]
        return PartitionedSupernet(members, self.part_of, self.prefix)  # type: ignore[arg-type]

    def sample(self, part: int) -> list[int]:
        """Op ids of a uniformly random arch of ``part`` (rejection sampling)."""
        while True:
            ids = self.rng.integers(0, NUM_OPS, size=NUM_EDGES).tolist()
            if self.part_of(Arch.from_op_ids(ids)) == part:
                return ids

    def train_step(self, base: Batch, arch: Batch | None, epoch: int) -> StepStats:
        assert self.supernet is not None
        x, y = base
        paths = [self.sample(g) for g in range(self.groups)]
        self.w_optimizer.zero_grad(set_to_none=False)
        logits = [self.supernet(x, index=ids) for ids in paths]
        loss = sum(nn.functional.cross_entropy(out, y) for out in logits)
        loss.backward()  # type: ignore[union-attr]
        if self.config.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.supernet.parameters(), self.config.grad_clip)
        self.w_optimizer.step()
        return step_stats(loss / self.groups, torch.cat(logits), y.repeat(self.groups))  # type: ignore[operator]

    def derive(self, ctx: SearchContext) -> Arch:
        # The study scores its own arch set; the loop's per-epoch arch is a placeholder.
        return Arch.from_op_ids(self.sample(0))


def _cpu_seconds() -> float:
    self_, children = (
        resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return self_.ru_utime + self_.ru_stime + children.ru_utime + children.ru_stime


def _open_table(bench: Any) -> Any:
    if isinstance(bench, (str, Path)):
        from nasforge.bench import Benchmark

        return Benchmark.open(bench)
    return bench


def _with_truth(
    table: Any, archs: list[Arch], ds: str, hp: str, key: str
) -> tuple[list[Arch], np.ndarray]:
    """The archs with a finite ``key`` in the table, and those values."""
    from nasforge.search.oneshot.loop import table_lookup

    truth = np.array([table_lookup(table, a, ds, hp)[key] for a in archs], dtype=float)
    keep = np.isfinite(truth)
    kept = [a for a, k in zip(archs, keep, strict=True) if k]
    if len(kept) < 2:
        raise SearchError(f"fewer than 2 of the sampled archs have a {key} in the table")
    return kept, truth[keep]


def _wait_for_truth(
    bench: Any, table: Any, archs: list[Arch], ds: str, hp: str, key: str, wait_s: float
) -> np.ndarray:
    """The truth of every arch of an explicit set, re-reading a table given by its path
    for up to ``wait_s`` seconds; a :class:`SearchError` naming the missing ones after."""
    from nasforge.search.oneshot.loop import table_lookup

    deadline = time.monotonic() + wait_s
    while True:
        truth = np.array([table_lookup(table, a, ds, hp)[key] for a in archs], dtype=float)
        missing = [a for a, t in zip(archs, truth, strict=True) if not np.isfinite(t)]
        if not missing:
            return truth
        left = deadline - time.monotonic()
        if left <= 0 or not isinstance(bench, (str, Path)):
            raise SearchError(
                f"{len(missing)} arch(s) of the set have no {key} in the table "
                f"({ds}, hp={hp}), e.g. {missing[0].to_string()}; expected a truth for each "
                "(finish the build, or give a longer wait)"
            )
        time.sleep(min(30.0, left))
        table = _open_table(bench)


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
    archs: Sequence[Arch | str | int] | None = None,
    wait_s: float = 0.0,
) -> dict[str, Any]:
    """Run the study; write ``ranking.json`` (and ``ranking.png``) into ``out_dir``.

    ``bench`` is an open table or its path. The arch set is ``config.num_archs`` archs of
    the table drawn with ``seed`` (those with a truth), or ``archs`` when given: then the
    truth is read after the training, so the study can run while ``nasforge bench build``
    is still filling the table (with a path, the table is re-read every 30 s for up to
    ``wait_s`` seconds until every arch of the set has its truth).

    One search loop trains every part's supernet (:class:`PartitionedRSPS`); at the end of
    every epoch, and every ``step_every`` steps of the last one, each arch of the set is
    scored by its part's supernet on the same ``eval_batches`` validation batches (the
    search's own validation half of the training data, never trained on).
    """
    from nasforge.data import DeviceLoader
    from nasforge.io import to_jsonable
    from nasforge.search.oneshot.loop import resolve_table, run_search, search_splits

    cfg = config or RankingConfig()
    wall0, cpu0 = time.perf_counter(), _cpu_seconds()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = _open_table(bench)
    ds, hp = resolve_table(table, bench_dataset or data.name, bench_hp)
    if archs is None:
        pool = list(table)
        if len(pool) < 2:
            raise SearchError(f"the table holds {len(pool)} arch(s); expected >= 2 to rank")
        pick = np.random.default_rng(seed).permutation(len(pool))[: cfg.num_archs]
        arch_set = [pool[i] for i in sorted(pick)]
        arch_set, truth = _with_truth(table, arch_set, ds, hp, cfg.truth)
    else:
        arch_set = list(dict.fromkeys(Arch.parse(a) for a in archs))
        if len(arch_set) < 2:
            raise SearchError(f"an arch set of {len(arch_set)} arch(s); expected >= 2 to rank")
    groups, part_of = part_functions(cfg, seed)
    parts = [part_of(a) for a in arch_set]
    method = PartitionedRSPS(
        groups, part_of, cfg.prefix, **{"select_num": 1, "valid_batches": 1, **(supernet or {})}
    )
    _, valid_split = search_splits(data, seed)
    eval_loader = DeviceLoader(valid_split, data, method.config.eval_batch_size, train=False)
    batches = [b for _, b in zip(range(cfg.eval_batches), eval_loader, strict=False)]
    timeline: list[tuple[str, np.ndarray]] = []
    info: dict[str, Any] = {}

    def score(label: str) -> None:
        timeline.append((label, np.array([method.evaluate_arch(a, batches) for a in arch_set])))

    def callback(event: str, payload: dict[str, Any]) -> None:
        if event == "start":
            info.update(payload)
        elif event == "step":
            last = payload["epoch"] == method.config.epochs - 1
            step = payload["step"] + 1
            if last and step % cfg.step_every == 0 and step < info["steps"]:
                score(f"e{payload['epoch'] + 1}s{step}")
        elif event == "epoch":
            score(f"e{payload['epoch']}")

    run_search(
        method, data, out / "supernet", seed=seed, plot=False, resume=False, callback=callback
    )
    if archs is not None:
        # An explicit set's truth is read now: the table may have been built meanwhile.
        truth = _wait_for_truth(bench, table, arch_set, ds, hp, cfg.truth, wait_s)
    snapshots: list[dict[str, Any]] = []
    previous = None
    for label, pred in timeline:
        metrics = rank_metrics(pred, truth, previous, min(cfg.top_k, len(arch_set)))
        snapshots.append({"label": label, "oneshot_acc": pred.tolist(), **metrics})
        previous = pred
    result = to_jsonable(
        {
            "config": asdict(cfg),
            "variant": cfg.label(),
            "supernet": method.config.to_dict(),
            "seed": seed,
            "dataset": data.name,
            "splits": {"train": len(data.train) - len(valid_split), "valid": len(valid_split)},
            "scored_images": sum(int(y.shape[0]) for _, y in batches),
            "table": {"dataset": ds, "hp": hp, "truth": cfg.truth},
            "groups": groups,
            "archs": [a.to_string() for a in arch_set],
            "parts": parts,
            "truth": truth.tolist(),
            "snapshots": snapshots,
            "timing": {
                "wall_s": time.perf_counter() - wall0,
                "cpu_s": _cpu_seconds() - cpu0,
                "note": "CPU time = getrusage SELF + CHILDREN; the machine may be shared, "
                "so wall time depends on its load",
            },
        }
    )
    save_study(out, result, plot=plot)
    return result


# -- several sharing variants side by side -------------------------------------------------------
def truth_agreement(
    table: Any, replicate: Any, archs: Sequence[Arch | str], dataset: str, hp: str, key: str
) -> dict[str, Any]:
    """How well a second training of the table's archs (another seed, ``replicate``)
    agrees with the table on the archs both hold: the noise floor of the ground truth."""
    from nasforge.search.oneshot.loop import table_lookup

    parsed = [Arch.parse(a) for a in archs]
    a = np.array([table_lookup(table, x, dataset, hp)[key] for x in parsed], dtype=float)
    b = np.array([table_lookup(replicate, x, dataset, hp)[key] for x in parsed], dtype=float)
    both = np.isfinite(a) & np.isfinite(b)
    if both.sum() < 2:
        raise SearchError(
            f"the replicate table holds {int(both.sum())} arch(s) of the study's set with a "
            f"{key} ({dataset}, hp={hp}); expected >= 2"
        )
    a, b = a[both], b[both]
    return {
        "archs": [x.to_string() for x, k in zip(parsed, both, strict=True) if k],
        "table": a.tolist(),
        "replicate": b.tolist(),
        "tau": kendall_tau(a, b),
        "mean_abs_diff": float(np.abs(a - b).mean()),
        "truth_range": [float(a.min()), float(a.max())],
    }


def compare_variants(
    results: Sequence[dict[str, Any]],
    out_json: str | Path,
    *,
    noise: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
    plot: bool = True,
) -> dict[str, Any]:
    """One JSON (``out_json``) and figure (same name, ``.png``) of several studies of the
    same arch set (variants, and seeds of a variant: one colour per variant, one line
    style per seed): tau / rho / consecutive tau over training per sharing variant, each
    variant's final figures and timing, the truth's own noise (``noise``, from
    :func:`truth_agreement`) and ``meta`` (e.g. the table build's commands and times)."""
    from nasforge.io import to_jsonable

    if not results:
        raise SearchError("no study to compare; expected one ranking.json per variant")
    archs = results[0]["archs"]
    for r in results[1:]:
        if r["archs"] != archs or r["truth"] != results[0]["truth"]:
            raise SearchError(
                f"study {r.get('variant')!r} ranks another arch set or truth; expected "
                "the same set in every study compared"
            )
    variants = []
    for r in results:
        snaps = r["snapshots"]
        last = snaps[-1]
        variants.append(
            {
                "variant": r.get("variant", RankingConfig(**r["config"]).label()),
                "seed": r["seed"],
                "config": r["config"],
                "groups": r["groups"],
                "labels": [s["label"] for s in snaps],
                "tau": [s["tau"] for s in snaps],
                "rho": [s["rho"] for s in snaps],
                "tau_prev": [s["tau_prev"] for s in snaps],
                "final": {
                    "tau": last["tau"],
                    "rho": last["rho"],
                    "topk_true_ranks": last["topk_true_ranks"],
                    "mean_oneshot_acc": float(np.mean(last["oneshot_acc"])),
                },
                "timing": r.get("timing"),
            }
        )
    first = results[0]
    combined = to_jsonable(
        {
            "archs": len(archs),
            "table": first["table"],
            "dataset": first["dataset"],
            "supernet": first["supernet"],
            "splits": first.get("splits"),
            "scored_images": first.get("scored_images"),
            "seed": first["seed"],
            "variants": variants,
            "truth_noise": noise,
            "meta": meta or {},
        }
    )
    save_variants(Path(out_json), combined, plot=plot)
    return combined

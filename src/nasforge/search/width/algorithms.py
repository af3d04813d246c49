"""Width search algorithms, registered in ``nasforge.search.WIDTH``.

* ``cafenet`` -- CafeNet (Su et al., ICLR 2021): a slimmable supernet with locally free
  weight sharing trained by min-min, then an evolutionary search over the (FLOPs-sensitive)
  bins under a FLOPs budget, each candidate scored with its best free-channel placement.
* ``fixed-width`` -- the same protocol with the fixed sharing pattern (width c = the first c
  channels), as in AutoSlim (Yu & Huang, 2019): the baseline CafeNet improves on.
* ``uniform-width`` -- no search: every layer at the same fraction of its width, the
  largest fraction that fits the budget (uniform width scaling, the usual slimming).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
import torch

from nasforge.data import DatasetSplits
from nasforge.errors import SearchError
from nasforge.nn.slimmable import (
    FixedSharing,
    LocallyFreeSharing,
    SlimmableNetwork,
)
from nasforge.search.registry import WIDTH
from nasforge.search.width.evolution import EvolutionSettings, evolve
from nasforge.search.width.supernet import (
    SupernetLog,
    SupernetScorer,
    SupernetSettings,
    train_supernet,
)
from nasforge.spaces.width import WidthSpace
from nasforge.train.recipe import Recipe


@dataclass
class WidthSearchResult:
    """The outcome of one width search at one FLOPs budget (JSON-ready via ``to_dict``)."""

    algorithm: str
    backbone: str
    budget_mflops: float | None
    widths: list[int]
    groups: dict[str, int]
    flops_m: float
    params_m: float
    supernet_acc: float | None
    placement: list[list[int]] | None = None
    evaluated: list[dict[str, Any]] = field(default_factory=list)
    search_time: float = 0.0
    #: Set when the search ran under a latency target (ms per image): the target, the
    #: latency model's prediction and (by the protocol) the measured latency.
    latency_target_ms: float | None = None
    pred_latency_ms: float | None = None
    measured_latency_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def for_widths(
        cls,
        algorithm: str,
        space: WidthSpace,
        budget_mflops: float,
        widths: Sequence[int],
        **rest: Any,
    ) -> WidthSearchResult:
        """The result for ``widths`` in ``space``, its groups and costs filled in; ``rest``
        sets the remaining fields (``supernet_acc``, ...)."""
        w = list(widths)
        return cls(
            algorithm=algorithm,
            backbone=space.spec.name,
            budget_mflops=budget_mflops,
            widths=w,
            groups=space.to_dict(w),
            flops_m=float(space.flops(w)),
            params_m=float(space.params(w)),
            **rest,
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WidthSearchResult:
        try:
            return cls(**d)
        except TypeError as exc:
            raise SearchError(f"not a width search result: {exc}") from None


@dataclass(frozen=True)
class Budget:
    """A constraint on configurations: ``cost(widths (B, G)) <= limit``.

    ``Budget.flops`` is the analytic FLOPs budget (MFLOPs); ``Budget.latency`` a latency
    target (ms per image) under a fitted latency model, whose cost is only defined on the
    bins of the space (``snap`` says so: uniform scaling then uses bin-snapped widths).
    """

    kind: str
    limit: float
    cost: Callable[[np.ndarray], np.ndarray]
    unit: str
    snap: bool = False

    @classmethod
    def flops(cls, space: WidthSpace, budget: str | float) -> Budget:
        mflops = space.parse_budget(budget)
        return cls("flops", mflops, lambda w: space.flops(w, check=False), "MFLOPs")

    @classmethod
    def latency(cls, model: Any, target_ms: float) -> Budget:
        """``model``: a ``nasforge.cost.latency_model.LatencyModel`` of the space."""
        space = model.space

        def cost(w: np.ndarray) -> np.ndarray:
            w = np.atleast_2d(w)
            idx = np.stack([space.encode(row) for row in w])
            return model.predict_indices(idx)

        return cls("latency", float(target_ms), cost, "ms", snap=True)


def as_budget(space: WidthSpace, budget: str | float | Budget) -> Budget:
    return budget if isinstance(budget, Budget) else Budget.flops(space, budget)


def uniform_for_budget(space: WidthSpace, budget: float | Budget) -> tuple[float, tuple[int, ...]]:
    """The largest uniform ratio (on a 0.001 grid) whose configuration fits ``budget``
    (MFLOPs, or a :class:`Budget`; a latency budget snaps widths up to the bins)."""
    b = budget if isinstance(budget, Budget) else Budget.flops(space, float(budget))
    ratios = np.round(np.arange(1000, 0, -1) / 1000.0, 3)
    configs = np.maximum(1, np.round(ratios[:, None] * space.full[None, :])).astype(np.int64)
    if b.snap:
        configs = np.stack(
            [c[np.minimum(np.searchsorted(c, configs[:, g]), len(c) - 1)]
             for g, c in enumerate(space.candidates)], axis=1,
        )  # fmt: skip
    ok = np.nonzero(b.cost(configs) <= b.limit + 1e-9)[0]
    if len(ok) == 0:
        raise SearchError(f"no uniform width of {space.spec.name} fits {b.limit:.4g} {b.unit}")
    r = float(ratios[ok[0]])
    return r, tuple(int(w) for w in configs[ok[0]])


class WidthSearch:
    """Supernet-based width search: train once with :meth:`fit`, :meth:`search` per budget."""

    name: ClassVar[str] = ""
    sharing_name: ClassVar[str] = ""
    #: In-place distillation by default (the supernet recipe this method comes with).
    default_distill: ClassVar[bool] = False

    def __init__(
        self,
        space: WidthSpace,
        *,
        recipe: Recipe,
        seed: int = 0,
        supernet: SupernetSettings | None = None,
        evolution: EvolutionSettings | None = None,
        r_bins: float | None = None,
        calib_images: int = 2048,
        select_batches: int = 1,
        eval_batch_size: int = 256,
        device: str | torch.device = "cpu",
        distill: bool | None = None,
    ) -> None:
        self.space = space
        self.recipe = recipe
        self.seed = int(seed)
        self.supernet_settings = supernet or SupernetSettings()
        if distill is None:
            distill = self.supernet_settings.distill
        self.supernet_settings = replace(
            self.supernet_settings,
            distill=self.default_distill if distill is None else bool(distill),
        )
        self.evolution = evolution or EvolutionSettings()
        self.r_bins = None if r_bins is None else float(r_bins)
        if int(calib_images) < 1:
            raise SearchError(f"calib_images must be >= 1, got {calib_images}")
        self.calib_images = int(calib_images)
        # BN statistics of every scored sub-network come from >= 2,000 training images
        # (whole batches; fewer only when the training split is smaller).
        self.calib_batches = -(-self.calib_images // int(eval_batch_size))
        self.select_batches = int(select_batches)
        self.eval_batch_size = int(eval_batch_size)
        self.device = torch.device(device)
        if self.sharing_name == "cafenet":
            # The free zone in FLOPs-sensitive bins, r = 1 bin by default (two placements
            # per group: the width's last bin in place or shifted one bin right).
            r = 1 if self.r_bins is None else int(self.r_bins)
            if r != self.r_bins and self.r_bins is not None:
                raise SearchError(f"r_bins is a whole number of bins, got {self.r_bins}")
            self.sharing: FixedSharing | LocallyFreeSharing = LocallyFreeSharing(space, r_bins=r)
        else:
            self.sharing = FixedSharing(space)
        self.supernet: SlimmableNetwork | None = None
        self.log: SupernetLog | None = None
        self.scorer: SupernetScorer | None = None

    def settings(self) -> dict[str, Any]:
        """Everything that fixes the run besides the data, for the JSON record."""
        return {
            "algorithm": self.name,
            "seed": self.seed,
            "recipe": self.recipe.to_dict(),
            "supernet": asdict(self.supernet_settings),
            "evolution": asdict(self.evolution),
            "r_bins": self.r_bins,
            "calib_images": self.calib_images,
            "calib_batches": self.calib_batches,
            "select_batches": self.select_batches,
            **self.sharing.describe(),
        }

    def fit(
        self,
        data: DatasetSplits,
        *,
        on_epoch: Callable[[dict[str, float]], None] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> SupernetLog:
        """Build the supernet (init seeded by ``seed``) and train it on ``data.train``."""
        return self._fit_supernet(data, on_epoch=on_epoch, progress=progress)

    def _fit_supernet(self, data: DatasetSplits, **train_kwargs: Any) -> SupernetLog:
        if data.num_classes != self.space.spec.num_classes:
            raise SearchError(
                f"{data.name} has {data.num_classes} classes but the width space was built "
                f"for {self.space.spec.num_classes}"
            )
        if data.resolution != self.space.spec.resolution:
            raise SearchError(
                f"{data.name} is {data.resolution}px but the width space was built for "
                f"{self.space.spec.resolution}px (FLOPs depend on it)"
            )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.supernet = SlimmableNetwork(self.space.spec)
        self.log = train_supernet(
            self.supernet,
            self.sharing,
            data,
            self.recipe,
            seed=self.seed,
            settings=self.supernet_settings,
            device=self.device,
            **train_kwargs,
        )
        self.scorer = SupernetScorer(
            self.supernet,
            self.sharing,
            data,
            batch_size=self.eval_batch_size,
            calib_batches=self.calib_batches,
            select_batches=self.select_batches,
            num_placements=self.supernet_settings.num_placements,
            seed=self.seed,
            device=self.device,
        )
        return self.log

    def score(self, widths: tuple[int, ...]) -> float:
        """Supernet validation accuracy (%) of a configuration (after :meth:`fit`)."""
        if self.scorer is None:
            raise SearchError(f"{self.name}: call fit(data) before scoring or searching")
        return self.scorer.score(widths).acc

    def search(
        self, budget: str | float | Budget, *, progress: Callable[[int, int], None] | None = None
    ) -> WidthSearchResult:
        """Evolutionary search for the best-scoring configuration within ``budget`` (FLOPs
        as ``"50%"`` / MFLOPs, or a :class:`Budget`); ``progress(done, total)`` per scored
        configuration."""
        b = as_budget(self.space, budget)
        if self.scorer is None:
            raise SearchError(f"{self.name}: call fit(data) before search")
        t0 = time.perf_counter()
        rng = np.random.default_rng([self.seed, 2, round(b.limit * 1000)])
        res = evolve(self.space, self.score, b.limit, rng=rng, settings=self.evolution,
                     cost=b.cost, progress=progress)  # fmt: skip
        best = self.scorer.score(res.best_widths)
        return _result(
            self.name,
            self.space,
            b,
            res.best_widths,
            supernet_acc=best.acc,
            placement=best.placement.to_json(),
            evaluated=res.history,
            search_time=time.perf_counter() - t0,
        )


def _result(
    algorithm: str, space: WidthSpace, budget: Budget, widths: Sequence[int], **rest: Any
) -> WidthSearchResult:
    """The result of a search under ``budget`` (a latency budget fills the latency fields)."""
    if budget.kind == "latency":
        rest.setdefault("pred_latency_ms", float(budget.cost(np.asarray([widths]))[0]))
        return WidthSearchResult.for_widths(
            algorithm, space, None, widths, latency_target_ms=budget.limit, **rest
        )
    return WidthSearchResult.for_widths(algorithm, space, budget.limit, widths, **rest)


@WIDTH.register("cafenet")
class CafeNetSearch(WidthSearch):
    """CafeNet: locally free weight sharing + min-min + evolutionary width search."""

    name = "cafenet"
    sharing_name = "cafenet"


@WIDTH.register("fixed-width")
class FixedWidthSearch(WidthSearch):
    """The fixed-pattern supernet as AutoSlim / BigNAS train it -- sandwich rule with
    in-place distillation -- under the same search protocol as CafeNet."""

    name = "fixed-width"
    sharing_name = "fixed"
    default_distill = True


@WIDTH.register("uniform-width")
class UniformWidth:
    """Uniform width scaling: every group at the largest common ratio that fits the budget."""

    name: ClassVar[str] = "uniform-width"

    def __init__(self, space: WidthSpace, **_: Any) -> None:
        self.space = space

    def settings(self) -> dict[str, Any]:
        return {"algorithm": self.name}

    def search(self, budget: str | float | Budget) -> WidthSearchResult:
        b = as_budget(self.space, budget)
        ratio, widths = uniform_for_budget(self.space, b)
        return _result(
            self.name,
            self.space,
            b,
            widths,
            supernet_acc=None,
            evaluated=[{"ratio": ratio}],
        )


SEARCH_BY_SHARING: dict[str, type[WidthSearch]] = {
    "cafenet": CafeNetSearch,
    "fixed": FixedWidthSearch,
}


__all__ = [
    "SEARCH_BY_SHARING",
    "CafeNetSearch",
    "FixedWidthSearch",
    "UniformWidth",
    "WidthSearch",
    "WidthSearchResult",
    "uniform_for_budget",
]

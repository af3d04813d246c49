"""Width search algorithms, registered in ``nasforge.search.ALGORITHMS`` (``kind = "width"``).

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
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from nasforge.data import DatasetSplits
from nasforge.errors import SearchError
from nasforge.nn.slimmable import (
    FixedSharing,
    LocallyFreeSharing,
    SlimmableNetwork,
    default_offsets,
)
from nasforge.search.registry import ALGORITHMS
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
    budget_mflops: float
    widths: list[int]
    groups: dict[str, int]
    flops_m: float
    params_m: float
    supernet_acc: float | None
    placement: list[list[int]] | None = None
    evaluated: list[dict[str, Any]] = field(default_factory=list)
    search_time: float = 0.0

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


def uniform_for_budget(space: WidthSpace, budget: float) -> tuple[float, tuple[int, ...]]:
    """The largest uniform ratio (on a 0.001 grid) whose configuration fits ``budget``."""
    ratios = np.round(np.arange(1000, 0, -1) / 1000.0, 3)
    configs = np.maximum(1, np.round(ratios[:, None] * space.full[None, :])).astype(np.int64)
    ok = np.nonzero(space.flops(configs, check=False) <= budget + 1e-9)[0]
    if len(ok) == 0:
        raise SearchError(f"no uniform width of {space.spec.name} fits {budget:.3f} MFLOPs")
    r = float(ratios[ok[0]])
    return r, tuple(int(w) for w in configs[ok[0]])


class WidthSearch:
    """Supernet-based width search: train once with :meth:`fit`, :meth:`search` per budget."""

    kind: ClassVar[str] = "width"
    name: ClassVar[str] = ""
    sharing_name: ClassVar[str] = ""

    def __init__(
        self,
        space: WidthSpace,
        *,
        recipe: Recipe,
        seed: int = 0,
        supernet: SupernetSettings | None = None,
        evolution: EvolutionSettings | None = None,
        r_bins: float | None = None,
        calib_batches: int = 2,
        select_batches: int = 1,
        eval_batch_size: int = 256,
        device: str | torch.device = "cpu",
    ) -> None:
        self.space = space
        self.recipe = recipe
        self.seed = int(seed)
        self.supernet_settings = supernet or SupernetSettings()
        self.evolution = evolution or EvolutionSettings()
        self.r_bins = None if r_bins is None else float(r_bins)
        self.calib_batches = int(calib_batches)
        self.select_batches = int(select_batches)
        self.eval_batch_size = int(eval_batch_size)
        self.device = torch.device(device)
        if self.sharing_name == "cafenet":
            # r = 1 channel per group by default; r_bins scales the zone with the bins.
            offsets = None if self.r_bins is None else default_offsets(space, self.r_bins)
            self.sharing: FixedSharing | LocallyFreeSharing = LocallyFreeSharing(space, offsets)
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
            "calib_batches": self.calib_batches,
            "select_batches": self.select_batches,
            **self.sharing.describe(),
        }

    def fit(
        self, data: DatasetSplits, *, on_epoch: Callable[[dict[str, float]], None] | None = None
    ) -> SupernetLog:
        """Build the supernet (init seeded by ``seed``) and train it on ``data.train``."""
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
            on_epoch=on_epoch,
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

    def search(self, budget: str | float) -> WidthSearchResult:
        """Evolutionary search for the best-scoring configuration within ``budget``."""
        mflops = self.space.parse_budget(budget)
        if self.scorer is None:
            raise SearchError(f"{self.name}: call fit(data) before search")
        t0 = time.perf_counter()
        rng = np.random.default_rng([self.seed, 2, round(mflops * 1000)])
        res = evolve(self.space, self.score, mflops, rng=rng, settings=self.evolution)
        best = self.scorer.score(res.best_widths)
        return WidthSearchResult.for_widths(
            self.name,
            self.space,
            mflops,
            res.best_widths,
            supernet_acc=best.acc,
            placement=best.placement.to_json(),
            evaluated=res.history,
            search_time=time.perf_counter() - t0,
        )


@ALGORITHMS.register("cafenet")
class CafeNetSearch(WidthSearch):
    """CafeNet: locally free weight sharing + min-min + evolutionary width search."""

    name = "cafenet"
    sharing_name = "cafenet"


@ALGORITHMS.register("fixed-width")
class FixedWidthSearch(WidthSearch):
    """The fixed-pattern (AutoSlim-style) supernet under the same protocol as CafeNet."""

    name = "fixed-width"
    sharing_name = "fixed"


@ALGORITHMS.register("uniform-width")
class UniformWidth:
    """Uniform width scaling: every group at the largest common ratio that fits the budget."""

    kind: ClassVar[str] = "width"
    name: ClassVar[str] = "uniform-width"

    def __init__(self, space: WidthSpace, **_: Any) -> None:
        self.space = space

    def settings(self) -> dict[str, Any]:
        return {"algorithm": self.name}

    def search(self, budget: str | float) -> WidthSearchResult:
        mflops = self.space.parse_budget(budget)
        ratio, widths = uniform_for_budget(self.space, mflops)
        return WidthSearchResult.for_widths(
            self.name,
            self.space,
            mflops,
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

"""RSPS: random search with parameter sharing (Li & Talwalkar, "Random Search and
Reproducibility for Neural Architecture Search", UAI 2019), as run for NAS-Bench-201.

Each step trains the shared weights on one uniformly random arch (xautodl
``random_genotype(True)``, ``exps/algos/RANDOM-NAS.py``). At the end ``select_num`` = 100
random archs are evaluated with the shared weights on the validation split and the best is
kept. Per epoch, the recorded "current" arch is the best of ``derive_samples`` random archs
on one batch each (the official script only logs the mean accuracy of random archs).

Settings: ``configs/nas-benchmark/algos/RANDOM.config`` (250 epochs, SGD lr 0.025 cosine to
0.001, batch 64, wd 5e-4), ``scripts-search/algos/RANDOM-NAS.sh`` (select_num 100), gradient
clip 5. ``select_batches=None`` scores every candidate on the whole validation split, as
the official ``valid_func`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nasforge.errors import SearchError
from nasforge.search.oneshot.base import (
    Batch,
    OneShotConfig,
    OneShotSearch,
    SearchContext,
    StepStats,
)
from nasforge.search.oneshot.setn import best_of
from nasforge.search.registry import ALGORITHMS
from nasforge.spaces.nb201 import NUM_EDGES, NUM_OPS, Arch


@dataclass(frozen=True)
class RSPSConfig(OneShotConfig):
    """RSPS' NB201 settings (no architecture optimizer)."""

    epochs: int = 250
    select_num: int = 100
    select_batches: int | None = None
    derive_samples: int = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("select_num", "derive_samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SearchError(f"config field {name}={value!r} invalid; expected an int >= 1")
        sb = self.select_batches
        if sb is not None and (isinstance(sb, bool) or not isinstance(sb, int) or sb < 1):
            raise SearchError(f"select_batches={sb!r} invalid; expected None or an int >= 1")


@ALGORITHMS.register("rsps")
class RSPS(OneShotSearch):
    """Random single-path weight training; the best of random archs at the end."""

    name = "rsps"
    config_class = RSPSConfig
    uses_arch_batches = False
    eval_is_derived = True

    def setup_arch(self) -> None:
        """RSPS has no architecture parameters."""

    def random_arch(self) -> Arch:
        return Arch.from_op_ids(self.rng.integers(0, NUM_OPS, size=NUM_EDGES).tolist())

    def train_step(self, base: Batch, arch: Batch | None, epoch: int) -> StepStats:
        assert self.supernet is not None
        sampled = self.rng.integers(0, NUM_OPS, size=NUM_EDGES).tolist()
        net = self.supernet
        return self.weight_step(lambda x: net(x, index=sampled), base)

    def probabilities(self) -> np.ndarray:
        return np.full((NUM_EDGES, NUM_OPS), 1.0 / NUM_OPS)

    def derive(self, ctx: SearchContext) -> Arch:
        candidates = [self.random_arch() for _ in range(self.config.derive_samples)]  # type: ignore[attr-defined]
        return best_of(self, candidates, ctx, 1)

    def finalize(self, ctx: SearchContext) -> Arch:
        cfg = self.config
        candidates = [self.random_arch() for _ in range(cfg.select_num)]  # type: ignore[attr-defined]
        if cfg.select_batches is not None:  # type: ignore[attr-defined]
            return best_of(self, candidates, ctx, cfg.select_batches)  # type: ignore[attr-defined]
        batches = ctx.full_valid()
        best, best_acc = candidates[0], -1.0
        for arch in candidates:
            acc = self.evaluate_arch(arch, batches)
            if acc > best_acc:
                best, best_acc = arch, acc
        return best

    def arch_state(self) -> dict[str, Any]:
        return {}

    def load_arch_state(self, state: dict[str, Any]) -> None:
        return None

"""RSPS: random search with parameter sharing (Li & Talwalkar, "Random Search and
Reproducibility for Neural Architecture Search", UAI 2019), as run for NAS-Bench-201.

Each step trains the shared weights on one uniformly random arch (xautodl
``random_genotype(True)``, ``exps/NAS-Bench-201-algos/RANDOM-NAS.py:44-50``, gradient clip 5
over ``network.parameters()``, which hold no architecture parameters). Every epoch and at
the end, ``search_find_best`` (``RANDOM-NAS.py:107-131``, called at ``:264-266`` and
``:320``) scores ``select_num`` = 100 random archs in eval mode (running BN statistics), each
on the next 512-image validation batch, and keeps the best: that is the epoch's arch and,
at the end, the result.

Settings: ``configs/nas-benchmark/algos/RANDOM.config`` (250 epochs, SGD lr 0.025 nesterov
cosine to 0.001, batch 64, wd 5e-4, test batch 512),
``scripts-search/NAS-Bench-201-algos/RANDOM-NAS.sh`` (select_num 100). ``select_batches``
(default 1, official) is the number of validation batches each candidate is scored on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nasforge.search.oneshot.base import (
    Batch,
    OneShotSearch,
    SearchContext,
    StepStats,
)
from nasforge.search.oneshot.setn import SelectConfig, best_of
from nasforge.search.registry import ONESHOT


@dataclass(frozen=True)
class RSPSConfig(SelectConfig):
    """RSPS' NB201 settings (no architecture optimizer)."""

    epochs: int = 250


@ONESHOT.register("rsps")
class RSPS(OneShotSearch):
    """Random single-path weight training; the best of random archs at the end (a space
    whose paths are archs)."""

    name = "rsps"
    config_class = RSPSConfig
    uses_arch_batches = False
    eval_is_derived = True
    needs = frozenset({"path-archs"})

    def setup_arch(self) -> None:
        """RSPS has no architecture parameters."""

    def random_arch(self) -> Any:
        return self.space.path_arch(self.uniform_path())

    def train_step(self, base: Batch, arch: Batch | None, epoch: int) -> StepStats:
        assert self.supernet is not None
        sampled = self.uniform_path()
        net = self.supernet
        return self.weight_step(lambda x: net(x, index=sampled), base)

    def probabilities(self) -> np.ndarray:
        rows, ops = self.space.shape
        return np.full((rows, ops), 1.0 / ops)

    def derive(self, ctx: SearchContext) -> Any:
        """``search_find_best``: the best of ``select_num`` random archs (every epoch and,
        through :meth:`finalize`, at the end)."""
        cfg = self.config
        candidates = [self.random_arch() for _ in range(cfg.select_num)]  # type: ignore[attr-defined]
        return best_of(self, candidates, ctx, cfg.select_batches)  # type: ignore[attr-defined]

    def arch_state(self) -> dict[str, Any]:
        return {}

    def load_arch_state(self, state: dict[str, Any]) -> None:
        return None

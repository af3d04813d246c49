"""BN-NAS (Chen et al., "BN-NAS: Neural Architecture Search with Batch Normalization",
ICCV 2021; code bychen515/BNNAS), on the NAS-Bench-201 space.

Supernet training (``BNNAS/supernet/main.py``, ``train.py``): SPOS-style uniform single
path per step, but only the BN that closes each candidate op trains (``main.py`` "Train only
BN": ``requires_grad`` only for the blocks' ``7.weight`` / ``7.bias``, the closing BN);
everything else -- convolutions, the stem, the residual blocks, the classifier -- stays at
its initialisation (``train_bn="all"`` trains every BN instead, our option). The candidate
ops' BNs are built affine here (the other one-shot methods use ``affine=False`` as
xautodl's search models), since the indicator is their scale. As in the official step, a
gradient that is exactly zero (an op off the step's path) is dropped before the step, so an
unused BN gets neither weight decay nor momentum; gradients are clipped by *value*
(``clip_grad_value_``, 5); the loss has label smoothing 0.1. Optimizer settings of
``main.py:26-33``: lr 0.25 at batch 512, min lr 5e-4, momentum 0.9 (no Nesterov), weight
decay 4e-5. The optimizer and schedule are ``utils/nas_utils.py:291-313``
``get_optimizer_schedule``: weight decay only on the 4-D parameters (convolutions) and the
classifier (``classifier.0``), none on anything else -- so the BN scales the indicator
reads, the only parameters the official rule trains, get no decay at all
(``decay="official"``, default; ``decay="all"`` decays every parameter, as this module did
before); the lr falls linearly per iteration, ``lr * (1 - k / delta)`` at iteration k with
``delta = total_iters / (1 - min_lr / lr)``, i.e. to ``min_lr`` at the last iteration
(``LambdaLR``, stepped before each iteration while above ``min_lr``,
``BNNAS/supernet/train.py:20-21``, with PyTorch >= 1.1's ``LambdaLR``: the repository does
not state its PyTorch, and on < 1.1 the first iteration would run at ``lr`` itself;
``schedule="linear"``, default; ``schedule="cosine"``
is the per-epoch cosine used before). Epochs: the official 10 ImageNet epochs are about a
tenth of SPOS'; on NB201 we take 25, a tenth of the 250 epochs of the NB201 single-path
runs.

The BN indicator (``BNNAS/search/ea.py``, ``EvolutionSearcher.__init__`` / ``get_bn_scores``):
for each searched cell and edge, the mean ``|gamma|`` of the BN that closes each candidate
op; an arch's score is the sum over its path. No forward pass is needed. On NB201 three ops
have no BN (``none``, ``skip_connect``, ``avg_pool_3x3`` with equal in/out channels), so
``no_bn`` says what they score:

* ``"zero"`` (default): nothing -- the official code's choice for its only BN-less choice
  (the identity of the depth search reads an all-zero column of ``bn_matrix``);
* ``"mean"``: the mean indicator of the parametric ops on the same cell edge (neutral).

``none`` always scores 0 (it has no path). Measured (a throwaway script, not shipped): the
indicator of all 15,625 archs against the real NB201 CIFAR-100 200-epoch test accuracy,
Kendall tau. Supernet C=8, N=1 (the truth's networks are C=16, N=5, trained on another
dataset): trained 3 epochs on the 10k-image CIFAR-10 subset with every BN trainable, lr
0.025: ``zero`` 0.52, ``mean`` 0.20 (vs the 12-epoch valid accuracy: 0.34 / 0.12); on
digits, 8 epochs, every BN at lr 0.025 / 0.25: ``zero`` 0.53 / 0.54, ``mean`` 0.20 / 0.20;
on digits, 8 epochs, the official rule (closing BNs only, lr 0.25): ``zero`` 0.54, ``mean``
0.20. Hence ``zero``. Caveat, stated plainly: in these small CPU runs BN-only training
stayed near chance accuracy (9-13 %) and the gammas barely moved from 1, so the indicator
was close to its value at initialisation, where ``zero`` counts convolutions -- which alone
gives tau 0.60 on the same truth. These runs do not show the trained indicator adding
information beyond the conv count; a larger-budget check is still to do.

Search (``ea.py`` argparse defaults): evolution over the indicator, population 50, 20
generations, top 10 kept as parents, 25 mutations (per-position probability 0.1) + 25
crossovers per generation, the rest random; only unseen candidates under the FLOPs budget
(``flops_limit`` in MFLOPs of ``nasforge.cost``'s NB201 count for ``flops_dataset``; None =
no budget) join. The EA draws from its own generator seeded from the run's seed, so the
per-epoch derivation does not disturb the training draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from nasforge.errors import SearchError
from nasforge.search.oneshot.base import Batch, SearchContext, StepStats, step_stats
from nasforge.search.oneshot.config import OneShotConfig, check_float
from nasforge.search.oneshot.sampling import SinglePathSearch, check_int
from nasforge.search.registry import ONESHOT

NO_BN = ("zero", "mean")
TRAIN_BN = ("closing", "all")
DECAY = ("official", "all")
SCHEDULES = ("linear", "cosine")


@dataclass(frozen=True)
class BNNASConfig(OneShotConfig):
    """BN-NAS' settings (see the module docstring)."""

    epochs: int = 25
    batch_size: int = 512
    lr: float = 0.25
    eta_min: float = 5e-4
    weight_decay: float = 4e-5
    nesterov: bool = False
    label_smoothing: float = 0.1
    train_bn: str = "closing"
    no_bn: str = "zero"
    decay: str = "official"
    schedule: str = "linear"
    population: int = 50
    generations: int = 20
    parents: int = 10
    mutations: int = 25
    crossovers: int = 25
    mutation_prob: float = 0.1
    flops_limit: float | None = None
    flops_dataset: str = "cifar10"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.no_bn not in NO_BN:
            raise SearchError(f"config field no_bn={self.no_bn!r} invalid; expected one of {NO_BN}")
        for name in ("population", "generations", "parents"):
            check_int(self, name, 1)
        for name in ("mutations", "crossovers"):
            check_int(self, name, 0)
        for name, allowed in (("decay", DECAY), ("schedule", SCHEDULES)):
            if getattr(self, name) not in allowed:
                raise SearchError(
                    f"config field {name}={getattr(self, name)!r} invalid; expected one of "
                    f"{allowed}"
                )
        if self.train_bn not in TRAIN_BN:
            raise SearchError(
                f"config field train_bn={self.train_bn!r} invalid; expected one of {TRAIN_BN}"
            )
        check_float(self, "label_smoothing")
        check_float(self, "mutation_prob")
        if self.mutation_prob > 1:
            raise SearchError(
                f"config field mutation_prob={self.mutation_prob!r} invalid; expected in [0, 1]"
            )
        if self.flops_limit is not None:
            check_float(self, "flops_limit", positive=True)


def bn_parameters(net: nn.Module) -> list[torch.Tensor]:
    """The BatchNorm parameters of ``net`` (what BN-NAS trains)."""
    return [
        p
        for m in net.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
        for p in m.parameters(recurse=False)
    ]


def closing_bn(op: nn.Module) -> nn.BatchNorm2d | None:
    """The BatchNorm that closes ``op`` (its last module that is one), or None."""
    bns = [m for m in op.modules() if isinstance(m, nn.BatchNorm2d)]
    return bns[-1] if bns else None


@ONESHOT.register("bn-nas")
class BNNAS(SinglePathSearch):
    """BN-only single-path supernet training; evolution on the BN indicator (a space whose
    paths are archs, that lists its cells' candidate ops and counts FLOPs)."""

    name = "bn-nas"
    config_class = BNNASConfig
    classification_only = True
    needs = frozenset({"path-archs", "cell-ops", "arch-flops"})

    def affine_bn(self) -> bool:
        return True

    def setup_arch(self) -> None:
        assert self.supernet is not None
        if self.config.train_bn == "all":  # type: ignore[attr-defined]
            bn_params = {id(p) for p in bn_parameters(self.supernet)}
        else:
            bn_params = {id(p) for bn in self.closing_bns() for p in bn.parameters()}
        for p in self.supernet.parameters():
            p.requires_grad_(id(p) in bn_params)
        cfg = self.config
        if cfg.decay == "official":  # type: ignore[attr-defined]
            # nas_utils.py:293-302: decay on 4-D weights and the classifier only
            decayed, other = [], []
            for name, p in self.supernet.named_parameters():
                (decayed if p.ndim == 4 or name.startswith("classifier.") else other).append(p)
            self.w_optimizer = torch.optim.SGD(
                [{"params": other, "weight_decay": 0.0}, {"params": decayed}],
                lr=cfg.lr,
                momentum=cfg.momentum,
                weight_decay=cfg.weight_decay,
                nesterov=cfg.nesterov and cfg.momentum > 0,
            )
        self.iteration = 0
        self.ea_seed = int(self.rng.integers(0, 2**31 - 1))

    def epoch_steps(self) -> int:
        """Steps per epoch: the loop's count, else the config's ``steps_per_epoch``."""
        steps = self.steps_per_epoch or self.config.steps_per_epoch
        if steps is None:
            raise SearchError(f"{self.name}: the linear schedule needs the steps per epoch")
        return int(steps)

    def iteration_lr(self, k: int) -> float:
        """The official linear schedule's lr at (1-based) iteration ``k``:
        ``lr * (1 - k / delta)``, ``delta = total / (1 - min_lr / lr)``, never below
        ``min_lr`` (``nas_utils.py:309-312``)."""
        cfg = self.config
        steps = self.epoch_steps()
        total = cfg.epochs * steps
        delta = total / (1.0 - cfg.eta_min / cfg.lr)
        return max(cfg.eta_min, cfg.lr * (1.0 - k / delta))

    def epoch_lr(self, epoch: int) -> float:
        """With ``schedule="linear"``: the lr of the epoch's first iteration (each step
        sets its own); else the per-epoch cosine."""
        if self.config.schedule == "cosine":  # type: ignore[attr-defined]
            return super().epoch_lr(epoch)
        return self.iteration_lr(epoch * self.epoch_steps() + 1)

    def begin_epoch(self, epoch: int) -> None:
        super().begin_epoch(epoch)
        if self.config.schedule == "linear":  # type: ignore[attr-defined]
            self.iteration = epoch * self.epoch_steps()

    def closing_bns(self) -> list[nn.BatchNorm2d]:
        """The BN closing each candidate op of the searched cells (ops that have one)."""
        assert self.supernet is not None
        out = []
        for cell in self.space.cell_ops(self.supernet):
            for ops in cell:
                out.extend(bn for bn in map(closing_bn, ops) if bn is not None)
        return out

    def trainable(self) -> list[nn.Parameter]:
        """The parameters the supernet training updates (the BN scales and shifts)."""
        assert self.supernet is not None
        return [p for p in self.supernet.parameters() if p.requires_grad]

    def train_step(self, base: Batch, arch: Batch | None, epoch: int) -> StepStats:
        self.iteration += 1
        if self.config.schedule == "linear":  # type: ignore[attr-defined]
            lr = self.iteration_lr(self.iteration)  # train.py:20-21, before the step
            for group in self.w_optimizer.param_groups:
                group["lr"] = lr
        sampled = self.uniform_path()
        return self.train_path(base, sampled)

    def train_path(self, base: Batch, path: list[int]) -> StepStats:
        """One BN-only SGD step on the single path ``path`` (one op id per edge)."""
        assert self.supernet is not None
        x, y = base
        self.w_optimizer.zero_grad(set_to_none=True)
        logits = self.supernet(x, index=path)
        loss = nn.functional.cross_entropy(
            logits,
            y,
            label_smoothing=self.config.label_smoothing,  # type: ignore[attr-defined]
        )
        if not loss.requires_grad:
            # A path without any convolution (only none / skip / pooling) holds no trainable
            # BN under train_bn="closing": nothing to update (never the case in the
            # official space, where every block has its closing BN).
            return step_stats(loss, logits, y)
        loss.backward()
        for p in self.trainable():
            # BNNAS/supernet/train.py "Fix a bug of pytorch": an all-zero gradient (a BN
            # off the path) is dropped, so the step gives it no decay and no momentum.
            if p.grad is not None and not bool(p.grad.any()):
                p.grad = None
        params = [p for p in self.trainable() if p.grad is not None]
        if not params:
            # Every gradient was zero (e.g. a conv fed only by a ``none`` edge).
            return step_stats(loss, logits, y)
        if self.config.grad_clip > 0:
            nn.utils.clip_grad_value_(params, self.config.grad_clip)
        self.w_optimizer.step()
        return step_stats(loss, logits, y)

    # -- the indicator ---------------------------------------------------------------------
    def bn_matrix(self) -> np.ndarray:
        """Indicator of each (searched cell, edge, op): mean |gamma| of the op's closing
        BN, with the BN-less ops treated as ``no_bn`` says; shape (cells, edges, ops)."""
        assert self.supernet is not None
        cells = self.space.cell_ops(self.supernet)
        edges, num_ops = self.space.shape
        none_id = self.space.ops.index("none")
        out = np.zeros((len(cells), edges, num_ops))
        has_bn = np.zeros((edges, num_ops), dtype=bool)
        for c, cell in enumerate(cells):
            for e, ops in enumerate(cell):
                for k, op in enumerate(ops):
                    bn = closing_bn(op)
                    if bn is not None and bn.weight is not None:
                        out[c, e, k] = float(bn.weight.detach().abs().mean())
                        has_bn[e, k] = True
        if self.config.no_bn == "mean":  # type: ignore[attr-defined]
            for e in range(edges):
                fill = out[:, e, has_bn[e]].mean(axis=1) if has_bn[e].any() else 0.0
                for k in range(num_ops):
                    if not has_bn[e, k] and k != none_id:
                        out[:, e, k] = fill
        return out

    def edge_scores(self) -> np.ndarray:
        """The indicator summed over the searched cells, per (edge, op): an arch's score is
        the sum of its path's entries (every cell holds the same arch)."""
        return self.bn_matrix().sum(axis=0)

    def score(self, arch: Any, scores: np.ndarray | None = None) -> float:
        """The BN indicator of ``arch`` (higher = predicted better)."""
        s = self.edge_scores() if scores is None else scores
        return float(sum(s[e, k] for e, k in enumerate(self.space.arch_path(arch))))

    def probabilities(self) -> np.ndarray:
        """The per-edge indicator normalised to sum to 1 (for the records and plot)."""
        s = self.edge_scores()
        total = s.sum(axis=1, keepdims=True)
        return np.where(total > 0, s / np.where(total > 0, total, 1.0), 1.0 / s.shape[1])

    # -- evolutionary search ---------------------------------------------------------------
    def flops(self, arch: Any) -> float:
        """MFLOPs of ``arch`` at the config's size on ``flops_dataset`` (the space's count)."""
        return self.space.arch_flops(arch, self.config.flops_dataset, self.config)  # type: ignore[attr-defined]

    def evolve(self, seed: int) -> Any:
        """``ea.py``'s evolution on the indicator: the best legal candidate seen."""
        cfg = self.config
        rng = np.random.default_rng(seed)
        scores = self.edge_scores()
        seen: dict[tuple[int, ...], float] = {}

        def legal(cand: tuple[int, ...]) -> bool:
            # ea.py is_legal: each candidate is scored once; over-budget ones are refused.
            if cand in seen:
                return False
            arch = self.space.path_arch(cand)
            if cfg.flops_limit is not None and self.flops(arch) > cfg.flops_limit:  # type: ignore[attr-defined]
                seen[cand] = -np.inf
                return False
            seen[cand] = self.score(arch, scores)
            return True

        def fill(make: Any, count: int, out: list[tuple[int, ...]]) -> None:
            tries = 10 * max(count, 1)
            while len(out) < count and tries > 0:
                tries -= 1
                cand = make()
                if legal(cand):
                    out.append(cand)

        edges, num_ops = self.space.shape

        def random_cand() -> tuple[int, ...]:
            return tuple(int(k) for k in rng.integers(0, num_ops, size=edges))

        def mutate(parents: list[tuple[int, ...]]) -> tuple[int, ...]:
            parent = parents[int(rng.integers(len(parents)))]
            return tuple(
                int(rng.integers(num_ops)) if rng.random() < cfg.mutation_prob else k  # type: ignore[attr-defined]
                for k in parent
            )

        def cross(parents: list[tuple[int, ...]]) -> tuple[int, ...]:
            a = parents[int(rng.integers(len(parents)))]
            b = parents[int(rng.integers(len(parents)))]
            return tuple(a[i] if rng.random() < 0.5 else b[i] for i in range(edges))

        population: list[tuple[int, ...]] = []
        fill(random_cand, cfg.population, population)  # type: ignore[attr-defined]
        top: list[tuple[int, ...]] = []
        for _ in range(cfg.generations):  # type: ignore[attr-defined]
            # ea.py update_top_k: the best ``parents`` seen so far are the parents.
            top = sorted(set(top) | set(population), key=lambda c: (-seen[c], c))
            top = top[: cfg.parents]  # type: ignore[attr-defined]
            if not top:
                break
            population = []
            fill(lambda p=top: mutate(p), cfg.mutations, population)  # type: ignore[attr-defined, misc]
            fill(lambda p=top: cross(p), cfg.crossovers, population)  # type: ignore[attr-defined, misc]
            fill(random_cand, cfg.population, population)  # type: ignore[attr-defined]
        legal_seen = [c for c, s in seen.items() if np.isfinite(s)]
        if not legal_seen:
            raise SearchError(
                f"bn-nas: no architecture met flops_limit={cfg.flops_limit} MFLOPs; "  # type: ignore[attr-defined]
                "expected a budget at least the cheapest arch's FLOPs"
            )
        return self.space.path_arch(max(legal_seen, key=lambda c: seen[c]))

    def derive(self, ctx: SearchContext) -> Any:
        return self.evolve(self.ea_seed)

    def extra_record(self) -> dict[str, Any]:
        return {"indicator": self.edge_scores().tolist()}

    def arch_state(self) -> dict[str, Any]:
        return {"ea_seed": self.ea_seed}

    def load_arch_state(self, state: dict[str, Any]) -> None:
        self.ea_seed = int(state["ea_seed"])

"""FP-NAS (Yan et al., "FP-NAS: Fast Probabilistic Neural Architecture Search", CVPR 2021),
on the NAS-Bench-201 space (any space whose paths are archs and whose rows group by node).

From PARSEC (Casale et al., "Probabilistic Neural Architecture Search", 2019), which FP-NAS
builds on -- the formulas:

* architectures ``a_1..a_K`` are drawn from the distribution ``p(a | pi)``;
* each gets the importance weight ``w_k = p(y | x, a_k, W) / sum_j p(y | x, a_j, W)``, the
  normalised likelihood of a validation batch (the samples come from the prior itself, so
  the likelihood is the whole importance ratio); the batch likelihood is the product over
  its images, ``log p = -sum CE``;
* the distribution's gradient is ``sum_k w_k grad_pi log p(a_k | pi)``; for softmax logits
  ``grad log p(a) = onehot(a) - softmax(pi)`` per categorical factor (ascended with Adam).

From FP-NAS:

* adaptive sampling -- the number of samples follows the distribution's entropy,
  ``K = max(k_min, ceil(lambda * H(p)))``: many samples while the distribution is flat,
  few once it is peaked (``samples_per_nat`` = lambda, ``min_samples`` = the floor);
* coarse-to-fine -- first a factorized distribution (one categorical per edge), then a
  joint one per node over the combinations of its incoming edges' ops, initialised with
  the product of the marginals, so the switch keeps the distribution exactly.

Our reading (not fixed by the paper for NB201, or not verified against its text -- FP-NAS
has no public code for this space):

* the weight gradient is ``sum_k w_k grad_W CE(train batch, a_k)``: each sample's forward /
  backward runs alone and accumulates, so memory is that of one path;
* the importance weights are computed once per step on the validation batch (no grad)
  and used for both updates;
* ``lambda = 1`` sample per nat and a floor of 2 (uniform NB201: ``H = 6 ln 5 = 9.66``
  nats, 10 samples); the switch to the joint distribution after ``coarse_fraction`` (1/2)
  of the epochs; NB201 nodes 1, 2, 3 have 1, 2, 3 incoming edges, so the joint
  distributions have 5, 25 and 125 entries;
* the arch optimizer is the NB201 one (Adam lr 3e-4, betas (0.5, 0.999), wd 1e-3), reset at
  the switch; ``H`` is the entropy of the whole distribution (the sum over its factors).

``probabilities()`` gives the per-edge marginals (of the joint distribution after the
switch); the derived arch is the per-edge argmax before the switch and the joint mode
(per node) after it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from nasforge.errors import SearchError
from nasforge.search.oneshot.base import (
    Batch,
    OneShotSearch,
    SearchContext,
    StepStats,
    entropy,
)
from nasforge.search.oneshot.config import OneShotConfig, check_float
from nasforge.search.oneshot.sampling import check_int
from nasforge.search.registry import ONESHOT

#: Per intermediate node, the rows (edges) entering it (the space adapter's ``node_rows``).
NodeRows = Sequence[Sequence[int]]


def node_combos(node_rows: NodeRows, num_ops: int) -> tuple[np.ndarray, ...]:
    """Per node, every combination of its incoming edges' ops (row-major, first edge
    slowest)."""
    return tuple(
        np.array(list(itertools.product(range(num_ops), repeat=len(rows))), dtype=np.int64)
        for rows in node_rows
    )


@dataclass(frozen=True)
class FPNASConfig(OneShotConfig):
    """FP-NAS' settings on NB201 (see the module docstring)."""

    samples_per_nat: float = 1.0
    min_samples: int = 2
    coarse_fraction: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        check_float(self, "samples_per_nat")
        check_int(self, "min_samples", 1)
        check_float(self, "coarse_fraction")
        if self.coarse_fraction > 1:
            raise SearchError(
                f"config field coarse_fraction={self.coarse_fraction!r} invalid; expected in [0, 1]"
            )


def sample_count(total_entropy: float, samples_per_nat: float, min_samples: int) -> int:
    """FP-NAS' adaptive number of samples: ``max(k_min, ceil(lambda * H))``."""
    return max(int(min_samples), math.ceil(samples_per_nat * total_entropy - 1e-9))


def joint_from_marginals(marginals: np.ndarray, node_rows: NodeRows) -> list[np.ndarray]:
    """Per node, the log-probabilities of the product of its edges' marginals (the joint
    initialisation of the fine stage)."""
    logp = np.log(np.clip(np.asarray(marginals, dtype=np.float64), 1e-30, 1.0))
    combos_of = node_combos(node_rows, logp.shape[1])
    out = []
    for edges, combos in zip(node_rows, combos_of, strict=True):
        out.append(sum(logp[e, combos[:, i]] for i, e in enumerate(edges)))
    return out


def joint_marginals(
    joint_probs: list[np.ndarray], node_rows: NodeRows, shape: tuple[int, int]
) -> np.ndarray:
    """The per-edge marginals, of ``shape`` (edges, ops), of per-node joint distributions."""
    out = np.zeros(shape)
    for edges, combos, p in zip(
        node_rows, node_combos(node_rows, shape[1]), joint_probs, strict=True
    ):
        for i, e in enumerate(edges):
            out[e] = np.bincount(combos[:, i], weights=p, minlength=shape[1])
    return out


@ONESHOT.register("fp-nas")
class FPNAS(OneShotSearch):
    """Importance-weighted sampled paths; entropy-adaptive sample count; factorized ->
    joint distribution (a space whose paths are archs and whose rows group by node)."""

    name = "fp-nas"
    config_class = FPNASConfig
    classification_only = True
    eval_is_derived = True
    needs = frozenset({"path-archs", "node-rows"})

    def setup_arch(self) -> None:
        self.node_rows = self.space.node_rows()
        self.node_combos = node_combos(self.node_rows, self.space.shape[1])
        self.fine = False
        self.logits: list[nn.Parameter] = [self.new_alphas()]
        self.a_optimizer = self.arch_adam(self.logits)
        self.last_samples = 0

    # -- the distribution ------------------------------------------------------------------
    def factor_probs(self) -> list[torch.Tensor]:
        """The distribution's categorical factors: one (edges, ops) matrix (coarse) or one
        vector per node (fine)."""
        return [torch.softmax(p.detach(), dim=-1) for p in self.logits]

    def total_entropy(self) -> float:
        return float(
            sum(entropy(p.cpu().double().numpy()[None]).sum() for p in self.factor_probs())
        )

    def num_samples(self) -> int:
        cfg = self.config
        return sample_count(self.total_entropy(), cfg.samples_per_nat, cfg.min_samples)  # type: ignore[attr-defined]

    def sample(self) -> tuple[list[int], list[torch.Tensor]]:
        """(op per edge, the sample's choice in each factor)."""
        choices = []
        for p in self.factor_probs():
            draw = torch.multinomial(p.cpu().reshape(-1, p.shape[-1]), 1, generator=self.generator)
            choices.append(draw.view(-1))
        if not self.fine:
            return choices[0].tolist(), choices
        ops = [0] * self.space.rows
        for edges, combos, c in zip(self.node_rows, self.node_combos, choices, strict=True):
            for i, e in enumerate(edges):
                ops[e] = int(combos[int(c), i])
        return ops, choices

    def switch_to_joint(self) -> None:
        """Replace the per-edge factors by per-node joint ones holding their product."""
        init = joint_from_marginals(self.probabilities(), self.node_rows)
        self.logits = [
            nn.Parameter(torch.tensor(x, dtype=torch.float32, device=self.device)) for x in init
        ]
        self.a_optimizer = self.arch_adam(self.logits)
        self.fine = True

    def begin_epoch(self, epoch: int) -> None:
        cfg = self.config
        if not self.fine and epoch >= round(cfg.coarse_fraction * cfg.epochs):  # type: ignore[attr-defined]
            self.switch_to_joint()

    # -- one step --------------------------------------------------------------------------
    def train_step(self, base: Batch, arch: Batch | None, epoch: int) -> StepStats:
        assert self.supernet is not None and arch is not None
        net = self.supernet
        k = self.num_samples()
        self.last_samples = k
        samples = [self.sample() for _ in range(k)]
        xv, yv = arch
        with torch.no_grad():
            # log p(y | x, a_k, W) of the validation batch: minus the summed cross-entropy.
            loglik = torch.stack(
                [
                    -nn.functional.cross_entropy(net(xv, index=ops), yv, reduction="sum")
                    for ops, _ in samples
                ]
            )
            w = torch.softmax(loglik.double(), dim=0)
        # Weights: the importance-weighted sum of the samples' training losses, one path at
        # a time (gradients accumulate).
        x, y = base
        self.w_optimizer.zero_grad(set_to_none=False)
        loss_sum = torch.zeros((), dtype=torch.float64, device=y.device)
        correct = torch.zeros((), dtype=torch.float64, device=y.device)
        for (ops, _), wk in zip(samples, w, strict=True):
            logits = net(x, index=ops)
            loss = nn.functional.cross_entropy(logits, y)
            (loss * float(wk)).backward()
            with torch.no_grad():
                loss_sum += loss.detach().double() * float(wk)
                correct += (logits.argmax(dim=1) == y).sum().double() * float(wk)
        if self.config.grad_clip > 0:
            nn.utils.clip_grad_norm_(net.parameters(), self.config.grad_clip)
        self.w_optimizer.step()
        # Distribution: ascend sum_k w_k grad log p(a_k | pi).
        probs = self.factor_probs()
        for f, (param, p) in enumerate(zip(self.logits, probs, strict=True)):
            grad = torch.zeros_like(p)
            for (_, choices), wk in zip(samples, w, strict=True):
                onehot = nn.functional.one_hot(choices[f].to(p.device), p.shape[-1]).to(p.dtype)
                grad += float(wk) * (onehot.view_as(p) - p)
            param.grad = -grad
        self.a_optimizer.step()
        n = int(y.shape[0])
        return loss_sum * n, correct.round().long(), n

    # -- views -----------------------------------------------------------------------------
    def probabilities(self) -> np.ndarray:
        probs = [p.cpu().double().numpy() for p in self.factor_probs()]
        return joint_marginals(probs, self.node_rows, self.space.shape) if self.fine else probs[0]

    def derive(self, ctx: SearchContext) -> Any:
        if not self.fine:
            return super().derive(ctx)
        ops = [0] * self.space.rows
        for edges, combos, p in zip(
            self.node_rows, self.node_combos, self.factor_probs(), strict=True
        ):
            best = combos[int(p.argmax())]
            for i, e in enumerate(edges):
                ops[e] = int(best[i])
        return self.space.path_arch(ops)

    def extra_record(self) -> dict[str, Any]:
        return {
            "stage": "joint" if self.fine else "factorized",
            "samples": self.last_samples,
            "total_entropy": self.total_entropy(),
        }

    def arch_state(self) -> dict[str, Any]:
        return {
            "fine": self.fine,
            "logits": [p.detach().clone() for p in self.logits],
            "a_optimizer": self.a_optimizer.state_dict(),
            "last_samples": self.last_samples,
        }

    def load_arch_state(self, state: dict[str, Any]) -> None:
        self.fine = bool(state["fine"])
        self.logits = [nn.Parameter(t.to(self.device).clone()) for t in state["logits"]]
        self.a_optimizer = self.arch_adam(self.logits)
        self.a_optimizer.load_state_dict(state["a_optimizer"])
        self.last_samples = int(state["last_samples"])

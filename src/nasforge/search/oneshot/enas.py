"""ENAS (Pham et al., "Efficient Neural Architecture Search via Parameter Sharing",
ICML 2018) on the NB201 space, as run for NAS-Bench-201.

An LSTM controller samples one op per edge (xautodl ``search_model_enas_utils.Controller``:
2-layer LSTM of 32 units, logits ``2.5 * tanh(logits / 5)``). Each epoch: the shared
weights are trained on the train half, one controller-sampled arch per batch; then the
controller is trained by REINFORCE on validation batches for ``controller_train_steps x
controller_num_aggregate`` samples (gradients averaged over ``num_aggregate``, clipped to
5), reward = accuracy + ``entropy_weight`` x entropy, baseline an exponential moving average
(decay ``bl_dec``) of the reward. The epoch's arch is the best of 10 controller samples on a
validation batch each; the final one, the best of ``num_samples`` = 100
(``exps/NAS-Bench-201-algos/ENAS.py``).

Settings: ``configs/nas-benchmark/algos/ENAS.config`` (310 epochs, SGD lr 0.05 cosine to
0.0005, wd 2.5e-4, batch 128; controller Adam lr 1e-3, betas (0, 0.999), eps 1e-3) and
``scripts-search/algos/ENAS.sh`` (entropy weight 1e-4, bl_dec 0.99, 50 train steps x 20
aggregated, 100 samples). The config's ``T_max`` is not used by its cosine schedule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from nasforge.errors import SearchError
from nasforge.search.oneshot.base import (
    Batch,
    OneShotConfig,
    OneShotSearch,
    SearchContext,
    StepStats,
    check_float,
    top1_correct,
)
from nasforge.search.oneshot.setn import best_of
from nasforge.search.registry import ALGORITHMS
from nasforge.spaces.nb201 import NUM_EDGES, NUM_OPS, Arch


class Controller(nn.Module):
    """The ENAS LSTM controller over the 6 NB201 edges."""

    def __init__(
        self,
        num_edges: int = NUM_EDGES,
        num_ops: int = NUM_OPS,
        lstm_size: int = 32,
        lstm_num_layers: int = 2,
        tanh_constant: float = 2.5,
        temperature: float = 5.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.num_edges, self.num_ops = num_edges, num_ops
        self.tanh_constant, self.temperature = tanh_constant, temperature
        self.input_vars = nn.Parameter(torch.empty(1, 1, lstm_size))
        self.w_lstm = nn.LSTM(
            input_size=lstm_size, hidden_size=lstm_size, num_layers=lstm_num_layers
        )
        self.w_embd = nn.Embedding(num_ops, lstm_size)
        self.w_pred = nn.Linear(lstm_size, num_ops)
        # Official init: U(-0.1, 0.1) for these tensors (the rest keep torch's defaults).
        for t in (
            self.input_vars,
            self.w_lstm.weight_hh_l0,
            self.w_lstm.weight_ih_l0,
            self.w_embd.weight,
            self.w_pred.weight,
        ):
            with torch.no_grad():
                t.uniform_(-0.1, 0.1, generator=generator)

    def _logits(self, inputs: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        outputs, state = self.w_lstm(inputs, state)
        logits = self.w_pred(outputs) / self.temperature
        return (self.tanh_constant * torch.tanh(logits)).view(-1), state

    def forward(
        self, generator: torch.Generator | None = None, greedy: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, list[int], np.ndarray]:
        """Sample an arch: (sum log-prob, sum entropy, op ids, per-edge probabilities)."""
        inputs, state = self.input_vars, None
        log_probs, entropies, ops, probs_out = [], [], [], []
        for _ in range(self.num_edges):
            logits, state = self._logits(inputs, state)
            log_p = torch.log_softmax(logits, dim=-1)
            probs = log_p.exp()
            if greedy:
                op = int(probs.argmax())
            else:
                op = int(torch.multinomial(probs.detach().cpu(), 1, generator=generator))
            ops.append(op)
            log_probs.append(log_p[op])
            entropies.append(-(probs * log_p).sum())
            probs_out.append(probs.detach().cpu().double().numpy())
            inputs = self.w_embd(torch.tensor([[op]], device=logits.device))
        return torch.stack(log_probs).sum(), torch.stack(entropies).sum(), ops, np.stack(probs_out)


@dataclass(frozen=True)
class ENASConfig(OneShotConfig):
    """ENAS' NB201 settings; the ``arch_*`` fields configure the controller's Adam."""

    epochs: int = 310
    batch_size: int = 128
    lr: float = 0.05
    eta_min: float = 0.0005
    weight_decay: float = 2.5e-4
    arch_lr: float = 1e-3
    arch_betas: tuple[float, float] = (0.0, 0.999)
    arch_weight_decay: float = 0.0
    arch_eps: float = 1e-3
    controller_train_steps: int = 50
    controller_num_aggregate: int = 20
    controller_entropy_weight: float = 1e-4
    controller_bl_dec: float = 0.99
    controller_num_samples: int = 100
    derive_samples: int = 10
    # configs/nas-benchmark/algos/ENAS.config: "T_max": ["int", 10].
    t_max: int | None = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        check_float(self, "arch_eps", positive=True)
        check_float(self, "controller_entropy_weight")
        for name in (
            "controller_train_steps",
            "controller_num_aggregate",
            "controller_num_samples",
            "derive_samples",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SearchError(f"config field {name}={value!r} invalid; expected an int >= 1")
        check_float(self, "controller_bl_dec")
        if not 0 <= self.controller_bl_dec <= 1:
            raise SearchError(
                f"controller_bl_dec={self.controller_bl_dec} invalid; expected in [0, 1]"
            )


@ALGORITHMS.register("enas")
class ENAS(OneShotSearch):
    """Controller-sampled single-path weight training + REINFORCE on the controller."""

    name = "enas"
    config_class = ENASConfig
    uses_arch_batches = False
    eval_is_derived = True

    def setup_arch(self) -> None:
        cfg = self.config
        self.controller = Controller(generator=self.generator)
        self.c_optimizer = torch.optim.Adam(
            self.controller.parameters(),
            lr=cfg.arch_lr,
            betas=cfg.arch_betas,
            eps=cfg.arch_eps,  # type: ignore[attr-defined]
            weight_decay=cfg.arch_weight_decay,
        )
        self.baseline: float | None = None
        self.last_controller: dict[str, float] = {}

    def train_step(self, base: Batch, arch: Batch | None, epoch: int) -> StepStats:
        assert self.supernet is not None
        with torch.no_grad():
            _, _, ops, _ = self.controller(self.generator)
        net = self.supernet
        return self.weight_step(lambda x: net(x, index=ops), base)

    def end_epoch(self, epoch: int, ctx: SearchContext) -> None:
        """Train the controller by REINFORCE (xautodl ``train_controller``)."""
        assert self.supernet is not None
        cfg = self.config
        aggregate = cfg.controller_num_aggregate  # type: ignore[attr-defined]
        total = cfg.controller_train_steps * aggregate  # type: ignore[attr-defined]
        self.controller.train()
        self.c_optimizer.zero_grad(set_to_none=True)
        batches = ctx.arch_batches()
        rewards, accs = [], []
        # The sampled archs are scored like every single path (BN on batch statistics, see
        # ``batch_statistics``); xautodl uses the running statistics of the shared CNN.
        with self.batch_statistics():
            self._train_controller(batches, total, aggregate, rewards, accs)
        self.last_controller = {
            "reward": float(np.mean(rewards)),
            "sampled_acc": 100.0 * float(np.mean(accs)),
            "baseline": float(self.baseline if self.baseline is not None else 0.0),
        }

    def _train_controller(
        self,
        batches: Any,
        total: int,
        aggregate: int,
        rewards: list[float],
        accs: list[float],
    ) -> None:
        assert self.supernet is not None
        cfg = self.config
        for step in range(total):
            x, y = next(batches)
            log_prob, ent, ops, _ = self.controller(self.generator)
            with torch.no_grad():
                acc = top1_correct(self.supernet(x, index=ops), y) / int(y.shape[0])
            # As in xautodl the entropy bonus is part of the reward (its gradient included);
            # the moving-average baseline is kept as a plain number.
            reward = acc + cfg.controller_entropy_weight * ent  # type: ignore[attr-defined]
            r = float(reward.detach())
            if self.baseline is None:
                self.baseline = acc
            else:
                self.baseline = self.baseline - (1 - cfg.controller_bl_dec) * (self.baseline - r)  # type: ignore[attr-defined]
            loss = -log_prob * (reward - self.baseline) / aggregate
            loss.backward()
            rewards.append(r)
            accs.append(acc)
            if (step + 1) % aggregate == 0:
                nn.utils.clip_grad_norm_(self.controller.parameters(), 5.0)
                self.c_optimizer.step()
                self.c_optimizer.zero_grad(set_to_none=True)

    def probabilities(self) -> np.ndarray:
        """Per-edge op distribution along the controller's greedy decoding."""
        with torch.no_grad():
            *_, probs = self.controller(greedy=True)
        return probs

    def _samples(self, n: int) -> list[Arch]:
        with torch.no_grad():
            return [Arch.from_op_ids(self.controller(self.generator)[2]) for _ in range(n)]

    def derive(self, ctx: SearchContext) -> Arch:
        return best_of(self, self._samples(self.config.derive_samples), ctx, 1)  # type: ignore[attr-defined]

    def finalize(self, ctx: SearchContext) -> Arch:
        n = self.config.controller_num_samples  # type: ignore[attr-defined]
        return best_of(self, self._samples(n), ctx, 1)

    def extra_record(self) -> dict[str, Any]:
        return {"controller": dict(self.last_controller)}

    def arch_state(self) -> dict[str, Any]:
        return {
            "controller": self.controller.state_dict(),
            "c_optimizer": self.c_optimizer.state_dict(),
            "baseline": self.baseline,
            "last_controller": dict(self.last_controller),
        }

    def load_arch_state(self, state: dict[str, Any]) -> None:
        self.controller.load_state_dict(state["controller"])
        self.c_optimizer.load_state_dict(state["c_optimizer"])
        self.baseline = state["baseline"]
        self.last_controller = dict(state["last_controller"])

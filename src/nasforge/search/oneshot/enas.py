"""ENAS (Pham et al., "Efficient Neural Architecture Search via Parameter Sharing",
ICML 2018), as run for NAS-Bench-201 (``exps/NAS-Bench-201-algos/ENAS.py``).

An LSTM controller samples one op per edge (xautodl ``search_model_enas_utils.Controller``:
2-layer LSTM of 32 units, logits ``2.5 * tanh(logits / 5)``). Each epoch:

* the shared weights are trained on the train half, one controller-sampled arch per batch,
  gradient clip 5 (``ENAS.py:46-64``);
* the controller is trained by REINFORCE (``train_controller``, ``ENAS.py:91-200``) on
  ``controller_train_steps x controller_num_aggregate`` = 50 x 20 samples, each scored on
  the next batch of the *augmented* validation half (128 images, ``ENAS.py:281-284``) with
  the shared CNN in eval mode (running BN statistics, ``ENAS.py:123``); gradients are
  averaged over ``num_aggregate`` samples and clipped to 5 (``ENAS.py:162-172``). The
  reward is ``acc + entropy_weight * entropy`` (entropy gradient included,
  ``ENAS.py:144``). The baseline (``ENAS.py:145-150``) is, for every sample of an epoch,
  ``B - (1 - bl_dec) * (B - reward)`` with ``B`` the baseline carried from the previous
  epoch -- ``B`` is not updated within an epoch; the epoch's last value becomes the next
  epoch's ``B`` (``ENAS.py:199,403,411``) -- and, in the first epoch (``B`` None), the
  sample's own accuracy;
* the epoch's arch is the best of 10 controller samples, each on the next augmented
  validation batch (``get_best_arch``, ``ENAS.py:203-228``, eval mode); the final one, the
  best of ``controller_num_samples`` = 100 (``ENAS.py:502-504``).

Settings: ``configs/nas-benchmark/algos/ENAS.config`` (250 epochs, SGD lr 0.05 nesterov
cosine to 0.0005 with ``T_max`` 10, wd 2.5e-4, batch 128; controller Adam lr 1e-3, betas
(0, 0.999), eps 1e-3, no weight decay, ``ENAS.py:313-318``) and
``scripts-search/NAS-Bench-201-algos/ENAS.sh`` (entropy weight 1e-4, bl_dec 0.99, 50 train
steps x 20 aggregated, 100 samples). xautodl's ``get_optim_scheduler`` passes ``T_max`` to
its cosine schedule, so the learning rate restarts every 10 epochs (see
:func:`~nasforge.search.oneshot.base.cosine_lr`).
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
    OneShotSearch,
    SearchContext,
    StepStats,
)
from nasforge.search.oneshot.config import OneShotConfig, check_float, check_int
from nasforge.search.oneshot.setn import best_of
from nasforge.search.registry import ONESHOT


class Controller(nn.Module):
    """The ENAS LSTM controller: one of ``num_ops`` ops for each of ``num_edges`` edges."""

    def __init__(
        self,
        num_edges: int,
        num_ops: int,
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
                # ``Categorical(logits).sample()`` draws ``multinomial(probs, 1, True)``: the
                # same draw for the same generator state (checked side by side with the official
                # controller in tests/test_oneshot_official.py).
                op = int(torch.multinomial(probs.detach().cpu(), 1, True, generator=generator))
            ops.append(op)
            log_probs.append(log_p[op])
            entropies.append(-(probs * log_p).sum())
            probs_out.append(probs.detach().cpu().double().numpy())
            inputs = self.w_embd(torch.tensor([[op]], device=logits.device))
        return torch.stack(log_probs).sum(), torch.stack(entropies).sum(), ops, np.stack(probs_out)


@dataclass(frozen=True)
class ENASConfig(OneShotConfig):
    """ENAS' NB201 settings; the ``arch_*`` fields configure the controller's Adam."""

    epochs: int = 250
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
            check_int(self, name)
        check_float(self, "controller_bl_dec")
        if not 0 <= self.controller_bl_dec <= 1:
            raise SearchError(
                f"controller_bl_dec={self.controller_bl_dec} invalid; expected in [0, 1]"
            )


@ONESHOT.register("enas")
class ENAS(OneShotSearch):
    """Controller-sampled single-path weight training + REINFORCE on the controller (a
    space whose paths are archs)."""

    name = "enas"
    config_class = ENASConfig
    uses_arch_batches = False
    eval_is_derived = True
    needs = frozenset({"path-archs"})

    def setup_arch(self) -> None:
        cfg = self.config
        rows, ops = self.space.shape
        self.controller = Controller(rows, ops, generator=self.generator)
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
        self.c_optimizer.zero_grad(set_to_none=False)
        rewards, accs = [], []
        with self.scoring_statistics():
            self.baseline = self.train_controller(
                ctx.arch_batches(), total, aggregate, self.baseline, rewards, accs
            )
        self.last_controller = {
            "reward": float(np.mean(rewards)),
            "sampled_acc": 100.0 * float(np.mean(accs)),
            "baseline": float(self.baseline if self.baseline is not None else 0.0),
        }

    def train_controller(
        self,
        batches: Any,
        total: int,
        aggregate: int,
        baseline: float | None,
        rewards: list[float],
        accs: list[float],
    ) -> float:
        """``total`` REINFORCE samples against the epoch's fixed baseline ``baseline`` (None
        in the first epoch); returns the baseline of the last sample, the next epoch's."""
        assert self.supernet is not None
        cfg = self.config
        decay = 1 - cfg.controller_bl_dec  # type: ignore[attr-defined]
        last = baseline
        for step in range(total):
            x, y = next(batches)
            log_prob, ent, ops, _ = self.controller(self.generator)
            with torch.no_grad():
                acc = self.batch_score(self.supernet(x, index=ops), y, x)
            reward = acc + cfg.controller_entropy_weight * ent  # type: ignore[attr-defined]
            # ENAS.py:145-150: both terms are tensors, so the entropy's gradient flows through
            # the reward and (scaled by 1 - bl_dec) through the baseline.
            step_baseline = (
                torch.tensor(acc) if baseline is None else baseline - decay * (baseline - reward)
            )
            loss = -log_prob * (reward - step_baseline) / aggregate
            loss.backward()
            rewards.append(float(reward.detach()))
            accs.append(acc)
            last = float(step_baseline.detach())
            if (step + 1) % aggregate == 0:
                nn.utils.clip_grad_norm_(self.controller.parameters(), 5.0)
                self.c_optimizer.step()
                self.c_optimizer.zero_grad(set_to_none=False)
        return float(last) if last is not None else 0.0

    def probabilities(self) -> np.ndarray:
        """Per-edge op distribution along the controller's greedy decoding."""
        with torch.no_grad():
            *_, probs = self.controller(greedy=True)
        return probs

    def _samples(self, n: int) -> list[Any]:
        with torch.no_grad():
            return [self.space.path_arch(self.controller(self.generator)[2]) for _ in range(n)]

    def derive(self, ctx: SearchContext) -> Any:
        """``get_best_arch``: the best of ``derive_samples`` controller samples, each on the
        next augmented validation batch."""
        samples = self._samples(self.config.derive_samples)  # type: ignore[attr-defined]
        return best_of(self, samples, ctx, 1, ctx.arch_batches())

    def finalize(self, ctx: SearchContext) -> Any:
        n = self.config.controller_num_samples  # type: ignore[attr-defined]
        return best_of(self, self._samples(n), ctx, 1, ctx.arch_batches())

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

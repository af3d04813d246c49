"""REINFORCE (Williams, 1992) over a categorical space, as run with NAS-Bench-201 / NATS-Bench.

Settings of the official script (``exps/NATS-algos/reinforce.py``, run with
``--learning_rate 0.01 --EMA_momentum 0.9``): the policy is one categorical distribution per
edge, ``softmax(theta[edge])`` with ``theta`` (6 x 5) initialised to ``1e-3 * N(0, 1)``; one
arch is sampled per step and its validation accuracy is the reward; the baseline is a
bias-corrected exponential moving average (momentum 0.9) *updated with the reward before*
the advantage ``reward - baseline`` is formed; the loss ``-log pi(a) * advantage`` is
minimised with Adam (lr 0.01, torch's defaults betas (0.9, 0.999), eps 1e-8). The returned
arch is the best validation accuracy seen (``max(trace)``), not the policy's argmax.

Implemented in numpy: the gradient of ``log softmax`` is ``onehot(a) - p`` per edge, so a
step is a few 6 x 5 array operations — far cheaper than building a torch graph per step.

Any :class:`nasforge.spaces.CategoricalSpace` works: ``theta`` has one row per position
(``space.choices()``) and as many columns as the largest position has options; the columns
a position lacks are masked out of its softmax (``-inf`` logits). With equal option counts
(NB201) nothing is masked and the run is the official one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nasforge.errors import SearchError
from nasforge.search.base import Ask, SearchContext, Searcher, Told, require_float
from nasforge.search.registry import BLACKBOX
from nasforge.spaces import CategoricalSpace, get_space, require_categorical


class _EMA:
    """The official ExponentialMovingAverage: numerator / denominator, i.e. bias-corrected."""

    def __init__(self, momentum: float) -> None:
        self.momentum = momentum
        self.num = 0.0
        self.den = 0.0

    def update(self, value: float) -> None:
        self.num = self.momentum * self.num + (1 - self.momentum) * value
        self.den = self.momentum * self.den + (1 - self.momentum)

    def value(self) -> float:
        return self.num / self.den


@BLACKBOX.register("reinforce")
class Reinforce(Searcher):
    """Policy gradient with a moving-average baseline and Adam."""

    name = "reinforce"

    def __init__(
        self,
        *,
        seed: int = 0,
        learning_rate: float = 0.01,
        ema_momentum: float = 0.9,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        super().__init__(seed=seed)
        self.learning_rate = require_float(
            "reinforce", "learning_rate", learning_rate, low=0.0, low_open=True
        )
        self.ema_momentum = require_float(
            "reinforce", "ema_momentum", ema_momentum, low=0.0, high=1.0, high_open=True
        )
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise SearchError(f"reinforce betas {betas!r} must be a pair of numbers in [0, 1)")
        self.betas = (
            require_float("reinforce", "betas[0]", betas[0], low=0.0, high=1.0, high_open=True),
            require_float("reinforce", "betas[1]", betas[1], low=0.0, high=1.0, high_open=True),
        )
        self.eps = require_float("reinforce", "eps", eps, low=0.0, low_open=True)
        self.categorical: CategoricalSpace = require_categorical(get_space(), "reinforce")
        self._reset_policy()

    def _reset_policy(self) -> None:
        radices = np.asarray([len(c.options) for c in self.categorical.choices()])
        # False where a position has fewer options than the widest one
        self._valid = np.arange(radices.max())[None, :] < radices[:, None]
        self._radices = radices
        # drawn first from the (re)seeded stream, as the official script initialises theta
        self.theta = 1e-3 * self.rng.standard_normal(self._valid.shape)
        self._m = np.zeros_like(self.theta)
        self._v = np.zeros_like(self.theta)
        self._step = 0
        self.baseline = _EMA(self.ema_momentum)

    def _start(self, context: SearchContext) -> None:
        self.categorical = require_categorical(context.space, "reinforce")
        self._reset_policy()

    def probs(self) -> np.ndarray:
        """The policy: per-position option probabilities (positions x options; 6 x 5 for
        NB201), zero where a position has fewer options."""
        z = np.where(self._valid, self.theta, -np.inf)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def _ask(self) -> Ask:
        p = self.probs()
        # inverse-CDF sampling of the categoricals from one uniform draw each
        u = self.rng.random(len(p))[:, None]
        actions = np.minimum((p.cumsum(axis=1) < u).sum(axis=1), self._radices - 1)
        return Ask(self.categorical.from_choices(actions.tolist()))

    def _tell(self, told: Told) -> None:
        actions = np.asarray(self.categorical.to_choices(told.arch))
        reward = told.valid_acc
        self.baseline.update(reward)
        advantage = reward - self.baseline.value()
        # d/dtheta of -log pi(a) * advantage = -(onehot(a) - p) * advantage
        grad = self.probs()
        grad[np.arange(len(grad)), actions] -= 1.0
        grad *= advantage
        self._adam(grad)

    def _adam(self, grad: np.ndarray) -> None:
        b1, b2 = self.betas
        self._step += 1
        self._m = b1 * self._m + (1 - b1) * grad
        self._v = b2 * self._v + (1 - b2) * grad * grad
        m_hat = self._m / (1 - b1**self._step)
        v_hat = self._v / (1 - b2**self._step)
        self.theta -= self.learning_rate * m_hat / (np.sqrt(v_hat) + self.eps)

    def policy_arch(self) -> Any:
        """The policy's most likely arch (the official ``genotype()``)."""
        return self.categorical.from_choices(self.probs().argmax(axis=1).tolist())

    def config(self) -> dict[str, Any]:
        return {
            "learning_rate": self.learning_rate,
            "ema_momentum": self.ema_momentum,
            "betas": list(self.betas),
            "eps": self.eps,
        }

"""DDPNAS: dynamic distribution pruning (Zheng et al., "Dynamic Distribution Pruning for
Efficient Network Architecture Search", 2019), on the NAS-Bench-201 space and (with XNAS'
DARTS-space settings and pruning groups, :mod:`~nasforge.search.oneshot.settings`) the
DARTS cell space.

Each edge holds a categorical distribution ``theta`` over its surviving ops (uniform at
the start). A *round* draws, for every edge independently, its surviving ops in random
order without replacement, one per epoch: with ``n`` survivors a round lasts ``n`` epochs
and every surviving op is on the drawn path exactly once. A path is trained for the whole
epoch (single path, SGD) and then scored on the validation split; its top-1 accuracy (a
fraction in [0, 1]) is credited to each op of the drawn path. With ``random_sample``
(default, XNAS' released configs, see below) the trained and scored path is a uniformly
random one, not the drawn path; with ``random_sample=False`` it is the drawn path itself.

After ``steps`` rounds (3, XNAS ``_C.SNG.PRUNING_STEP = 3``) the distribution is updated
(XNAS ``xnas/algorithms/SNG/DDPNAS.py``, ``CategoricalDDPNAS.update``)::

    expectation = mean over the rounds of softmax(100 * accuracy, over the ops)
    velocity    = gamma * velocity + (1 - gamma) * expectation     (gamma = 0.9)
    theta      += velocity;  prune argmin(theta) among each edge's survivors
    theta      /= theta.sum(per edge)

``gamma`` is 0.9 (XNAS ``_C.SNG.GAMMA = 0.9``; the class's own default 0.8 is overridden
by that config). The search ends when one op per edge remains: with 5 ops and 3 rounds per
pruning that is ``3 * (5 + 4 + 3 + 2) = 42`` epochs (XNAS' ``get_training_epoch`` returns
``steps * sum(range(Cmax)) = 3 * (0+1+2+3+4) = 30``, which undercounts: each round lasts as
many epochs as there are survivors; the search loop stops on ``training_finish``, not on
that number). Settings of the paper / XNAS config: SGD lr 0.025 cosine to 1e-3, weight
decay 5e-4, batch 256, gradient clip 5.

Differences, stated:

* XNAS credits the validation *error* where the update treats the value as a performance
  (higher = better); we credit the accuracy, as the paper describes.
* XNAS takes the softmax over all ops, pruned ones at performance 0; we mask pruned ops
  out of it (their share is ``exp(-100 * acc)``, i.e. below 1e-20 for any accuracy > 0.5).
* XNAS' DARTS-space rule "prune at most 3 parametric / 3 parameter-free ops" is specific
  to the 8-op DARTS space and not applied here (the DARTS space adapter's
  ``prune_groups`` apply it there).
* XNAS' released configs (``configs/search/SNG/DDPNAS_nasbench201_cifar10.yaml``, and the
  DARTS one; the same at 808e5a8, 72df3f8, 85dec6e and head ea8f8ab) set
  ``RANDOM_SAMPLE: True``: each epoch trains a uniformly random path (every op, pruned
  ones included) and its validation result is credited to the path the distribution drew
  (``scripts/search/SNG/search.py:77-83``; ``DDPNAS.py`` ``record_information`` writes at
  ``self.sample``, the distribution's draw). That is the default here (``random_sample``);
  ``random_sample=False`` trains and scores the distribution's own path, as the paper
  describes. ``BIGMODEL_SAMPLE_PROB`` is 0 for NB201 (0.5 in the DARTS space). Nesterov is
  off (XNAS ``_C.OPTIM.NESTEROV = False``, not set by the yaml).
* Not verified against the released search script: the BN mode of the path's validation
  (we score as ``score_bn`` says: running statistics by default).

``probabilities()`` reports ``theta`` restricted to the survivors and renormalised; the
derived arch is its per-edge argmax over the survivors, ties (every op before the first
update, when ``theta`` is uniform) broken by the mean accuracy credited to the op in the
rounds since the last pruning (not yet drawn = worst): the best path seen so far rather
than op 0 (``none``) everywhere. With ``epochs`` above the schedule length the
remaining epochs train the final arch; below it, the search stops early and the derived
arch is the argmax over the survivors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nasforge.errors import SearchError
from nasforge.search.oneshot.base import Batch, SearchContext, StepStats
from nasforge.search.oneshot.config import OneShotConfig, check_bool, check_float
from nasforge.search.oneshot.sampling import SinglePathSearch, check_int
from nasforge.search.registry import ONESHOT


def schedule_epochs(num_ops: int, steps: int, last: int = 1) -> int:
    """Epochs until ``last`` ops per edge remain: ``steps`` rounds at each survivor count
    ``n = num_ops .. last + 1``, each round lasting ``n`` epochs."""
    return steps * sum(range(last + 1, num_ops + 1))


@dataclass(frozen=True)
class DDPNASConfig(OneShotConfig):
    """DDPNAS' NB201 settings (see the module docstring): 42 epochs, the schedule of 5 ops
    and 3 rounds per pruning (``schedule_epochs(5, 3)``)."""

    epochs: int = 42
    batch_size: int = 256
    nesterov: bool = False
    steps: int = 3
    gamma: float = 0.9
    temperature: float = 100.0
    random_sample: bool = True
    bigmodel_sample_prob: float = 0.0
    bigmodel_non_para: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int(self, "steps", 1)
        check_float(self, "gamma")
        check_float(self, "temperature", positive=True)
        check_bool(self, "random_sample")
        check_float(self, "bigmodel_sample_prob")
        check_int(self, "bigmodel_non_para", 0)
        if self.gamma >= 1:
            raise SearchError(f"config field gamma={self.gamma!r} invalid; expected in [0, 1)")
        if not 0.0 <= self.bigmodel_sample_prob <= 1.0:
            raise SearchError(
                f"config field bigmodel_sample_prob={self.bigmodel_sample_prob!r} invalid; "
                "expected in [0, 1]"
            )


@ONESHOT.register("ddpnas")
class DDPNAS(SinglePathSearch):
    """Rounds of without-replacement single paths; distribution update + pruning every
    ``steps`` rounds. The space adapter gives the distribution's shape, the op groups of
    which pruning keeps one survivor each (``prune_groups``; empty: one group, pruning goes
    on until one op per edge remains) and the big-model sampling rule (``bigmodel_rule``:
    XNAS ``non_op_idx`` / ``none_idx`` and the rows it counts them in, the normal cell's;
    None: no big-model sampling in that space)."""

    name = "ddpnas"
    config_class = DDPNASConfig

    @property
    def arch_shape(self) -> tuple[int, int]:
        """The (edges, ops) shape of the distribution."""
        return self.space.shape

    @property
    def prune_groups(self) -> tuple[tuple[int, ...], ...]:
        return self.space.prune_groups

    @property
    def bigmodel_rule(self) -> tuple[tuple[int, ...], int, int] | None:
        return self.space.bigmodel_rule

    def setup_arch(self) -> None:
        edges, ops = self.arch_shape
        self.theta = np.full((edges, ops), 1.0 / ops)
        self.velocity = np.zeros((edges, ops))
        self.alive = np.ones((edges, ops), dtype=bool)
        #: Ops each edge has still to draw in the current round.
        self.to_draw: list[list[int]] = [[] for _ in range(edges)]
        #: One accuracy matrix per finished or running round since the last pruning.
        self.rounds: list[np.ndarray] = []
        self.path: list[int] = [0] * edges
        #: The path trained this epoch: ``path`` itself, or with ``random_sample`` a uniformly
        #: random one whose accuracy is credited to ``path`` (XNAS ``RANDOM_SAMPLE``).
        self.train_path: list[int] = [0] * edges
        self.prunings = 0
        if self.config.bigmodel_sample_prob > 0 and self.bigmodel_rule is None:  # type: ignore[attr-defined]
            raise SearchError(
                f"{self.name}: bigmodel_sample_prob needs parameter-free op groups, which the "
                f"{self.space_name} space does not define; use 0"
            )

    # -- the round / pruning schedule ------------------------------------------------------
    def prunable(self) -> np.ndarray:
        """Which survivors pruning may remove: all but the last survivor of each group of
        :attr:`prune_groups` (one group of all ops when it is empty)."""
        groups = self.prune_groups or (tuple(range(self.arch_shape[1])),)
        out = np.zeros_like(self.alive)
        for g in groups:
            cols = list(g)
            out[:, cols] = self.alive[:, cols] & (self.alive[:, cols].sum(axis=1) > 1)[:, None]
        return out

    @property
    def finished(self) -> bool:
        """Whether no edge has an op left to prune (one op per edge without groups)."""
        return not bool(self.prunable().any())

    def draw_path(self) -> list[int]:
        """The next path: each edge's next op of the current round (a new round when the
        last one is exhausted)."""
        if not self.to_draw[0]:
            self.rounds.append(np.zeros(self.alive.shape))
            self.to_draw = [
                [int(k) for k in self.rng.permutation(np.flatnonzero(alive))]
                for alive in self.alive
            ]
        self.path = [d.pop() for d in self.to_draw]
        return self.path

    def credit(self, accuracy: float) -> None:
        """Credit ``accuracy`` (fraction) to every op of the current path; after the last
        epoch of the ``steps``-th round, update the distribution and prune."""
        for e, k in enumerate(self.path):
            self.rounds[-1][e, k] = accuracy
        if not self.to_draw[0] and len(self.rounds) == self.config.steps:  # type: ignore[attr-defined]
            self.update_and_prune()

    def update_and_prune(self) -> None:
        """The XNAS update (module docstring): momentum on the mean of the rounds'
        softmax(100 * accuracy), then each edge loses its weakest prunable survivor."""
        cfg = self.config
        expectation = np.zeros(self.alive.shape)
        for perf in self.rounds:
            logits = np.where(self.alive, cfg.temperature * perf, -np.inf)  # type: ignore[attr-defined]
            logits -= logits.max(axis=1, keepdims=True)
            w = np.exp(logits)
            expectation += w / w.sum(axis=1, keepdims=True)
        expectation /= len(self.rounds)
        self.velocity = cfg.gamma * self.velocity + (1 - cfg.gamma) * expectation  # type: ignore[attr-defined]
        self.theta = self.theta + self.velocity
        prunable = self.prunable()
        for e in range(len(self.alive)):
            candidates = np.flatnonzero(prunable[e])
            # First minimum wins ties (np.nanargmin in XNAS).
            weakest = candidates[int(np.argmin(self.theta[e, candidates]))]
            self.alive[e, weakest] = False
        self.theta = self.theta / self.theta.sum(axis=1, keepdims=True)
        self.rounds = []
        self.to_draw = [[] for _ in self.alive]
        self.prunings += 1

    def random_path(self) -> list[int]:
        """XNAS ``random_sampling`` (``scripts/search/SNG/search.py:114-165``, with
        ``PROB_SAMPLING`` and ``EDGE_SAMPLING`` off): each edge's op uniform over all ops
        (pruned ones included); with probability ``bigmodel_sample_prob`` redrawn until the
        leading rows hold no ``none`` and at most ``bigmodel_non_para`` parameter-free ops."""
        cfg = self.config
        edges, ops = self.arch_shape

        def draw() -> list[int]:
            return [int(k) for k in self.rng.integers(ops, size=edges)]

        if self.bigmodel_rule is None or self.rng.random() >= cfg.bigmodel_sample_prob:  # type: ignore[attr-defined]
            return draw()
        non_param, none_id, rows = self.bigmodel_rule
        while True:
            path = draw()
            head = path[:rows]
            if none_id not in head and sum(k in non_param for k in head) <= cfg.bigmodel_non_para:  # type: ignore[attr-defined]
                return path

    # -- the loop's hooks ------------------------------------------------------------------
    def final_path(self) -> list[int]:
        """The path trained once the search has finished: the derived arch's (NB201: each
        edge's sole survivor; DARTS space: the genotype's edges, ``none`` elsewhere)."""
        return self.space.arch_path(self.derive(None))  # type: ignore[arg-type]

    def begin_epoch(self, epoch: int) -> None:
        if self.finished:
            self.path = self.final_path()
            self.train_path = self.path
        else:
            self.draw_path()
            # search.py:77 trains random_sampling's path, while record_information credits
            # the distribution's own draw (DDPNAS.py:62-65 uses self.sample, not its argument)
            self.train_path = self.random_path() if self.config.random_sample else self.path  # type: ignore[attr-defined]

    def train_step(self, base: Batch, arch: Batch | None, epoch: int) -> StepStats:
        return self.path_step(base, self.train_path)

    def end_epoch(self, epoch: int, ctx: SearchContext) -> None:
        if self.finished:
            return
        # search.py:79-83: the trained path's validation result is what gets credited
        acc = self.evaluate_arch(self.space.path_arch(self.train_path), ctx.full_valid())
        self.credit(acc / 100.0)

    def probabilities(self) -> np.ndarray:
        p = np.where(self.alive, self.theta, 0.0)
        return p / p.sum(axis=1, keepdims=True)

    def credited(self) -> np.ndarray:
        """Mean accuracy credited to each op in the rounds since the last pruning; -inf
        where the op has not been drawn (or is pruned)."""
        if not self.rounds:
            return np.full(self.alive.shape, -np.inf)
        perf = np.stack(self.rounds)
        drawn = (perf > 0).sum(axis=0)
        mean = perf.sum(axis=0) / np.maximum(drawn, 1)
        return np.where(self.alive & (drawn > 0), mean, -np.inf)

    def derive(self, ctx: SearchContext | None) -> Any:
        """The space's derivation of the survivors' ``theta``; where every edge is kept
        (NB201): per edge the survivor of highest ``theta``, ties by :meth:`credited`."""
        return self.space.derive(self.probabilities(), tie_break=self.credited())

    def extra_record(self) -> dict[str, Any]:
        return {
            "path": self.space.describe_path(self.path),
            "trained_path": self.space.describe_path(self.train_path),
            "survivors": self.alive.sum(axis=1).tolist(),
            "prunings": self.prunings,
        }

    def arch_state(self) -> dict[str, Any]:
        return {
            "theta": self.theta.tolist(),
            "velocity": self.velocity.tolist(),
            "alive": self.alive.tolist(),
            "to_draw": [list(d) for d in self.to_draw],
            "rounds": [r.tolist() for r in self.rounds],
            "path": list(self.path),
            "train_path": list(self.train_path),
            "prunings": self.prunings,
        }

    def load_arch_state(self, state: dict[str, Any]) -> None:
        self.theta = np.asarray(state["theta"], dtype=np.float64)
        self.velocity = np.asarray(state["velocity"], dtype=np.float64)
        self.alive = np.asarray(state["alive"], dtype=bool)
        self.to_draw = [[int(k) for k in d] for d in state["to_draw"]]
        self.rounds = [np.asarray(r, dtype=np.float64) for r in state["rounds"]]
        self.path = [int(k) for k in state["path"]]
        self.train_path = [int(k) for k in state.get("train_path", state["path"])]
        self.prunings = int(state["prunings"])

"""BANANAS: Bayesian optimisation with a neural-network ensemble on the path encoding.

White, Neiswanger, Savani, "BANANAS: Bayesian Optimization with Neural Architectures for
Neural Architecture Search", AAAI 2021. The defaults are the released code's
(naszilla/naszilla at 7e65491; ``variant="naszilla"``, file:line in
:data:`BANANAS_VARIANTS`); ``variant="nasforge-v1"`` keeps what this module did before.

- predictor: an ensemble of 5 feed-forward networks, 10 hidden layers of width 20, ReLU,
  trained on the mean absolute error with lr 0.01, batch size 32 for 150 epochs
  (``params.py:72-74``; the paper's Sec. 5 says 200, ``nasforge-v1``), Keras' Adam with
  beta2 0.99 and epsilon 1e-7 (``meta_neural_net.py`` ``fit``), Glorot-uniform weights and
  zero biases (Keras' ``Dense`` defaults). Targets are the raw validation loss,
  100 - accuracy (``nas_algorithms.py:195``, ``loss='val_loss'``); ``nasforge-v1``
  standardises the accuracy instead.
- encoding: on NB201 the path encoding truncated to 30 bits (``trunc_path``; the 155-bit
  ``path`` in ``nasforge-v1``); on a space without ``trunc_path``, ``path``.
- acquisition: independent Thompson sampling (ITS): per candidate, one draw from
  N(mean, std) of the ensemble's predictions (``acquisition_functions.py:61-64``).
- acquisition optimisation: mutation of the best evaluated archs (``num_init 10, k 10``,
  100 candidates, 1 parent (``nasforge-v1``: 2, NASLib's default), ``max_mutation_rate 1``);
  a mutant changes each position with probability 1/4 on NB201 (``nasforge-v1``: exactly
  one position). The ``k`` candidates with the highest draws are evaluated before the
  ensemble is refitted. Archs already evaluated and duplicates are dropped from the
  candidates (``nas_benchmarks.py:117-188`` ``get_candidates``), and when the best archs'
  mutants are all known the next-best ones are mutated (``patience_factor`` 5).

Not reproduced: Keras' batch order and initial weights (another random stream), and
TensorFlow's float32 arithmetic order.

The ensemble's members share nothing, but are trained together as one batched network
(stacked weight arrays, one Adam state per element, an independent shuffle per member):
the same computation as five separate trainings, at a fifth of the Python overhead.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable
from typing import Any

import numpy as np

from nasforge.errors import SearchError
from nasforge.search.base import (
    Ask,
    SearchContext,
    Searcher,
    Told,
    require_float,
    require_int,
)
from nasforge.search.registry import BLACKBOX
from nasforge.spaces.base import require_categorical

__all__ = ["BANANAS_VARIANTS", "Bananas", "MLPEnsemble"]


class MLPEnsemble:
    """``num_members`` independent MLP regressors trained as one batched network.

    The ensemble is trained in numpy (float32) with a hand-written backward pass and Adam
    (beta1 0.9; ``keras_adam``: Keras' update ``lr * sqrt(1 - b2^t) / (1 - b1^t) * m /
    (sqrt(v) + eps)``, else PyTorch's, with eps inside the bias correction) on one flat parameter
    buffer: the layers are 20 units wide, so per-operation overhead, not arithmetic, is the
    cost; autograd and a per-tensor optimiser spent ~6 ms of CPU per step on 22 tiny
    tensors, this ~0.3 ms (one BANANAS run: ~10,000 steps). The gradient equals autograd's
    (``tests/test_bananas.py``).
    """

    def __init__(
        self,
        *,
        num_members: int = 5,
        num_layers: int = 10,
        width: int = 20,
        lr: float = 0.01,
        epochs: int = 150,
        batch_size: int = 32,
        beta2: float = 0.99,
        eps: float = 1e-7,
        keras_adam: bool = True,
        standardise: bool = False,
        seed: int = 0,
    ) -> None:
        self.num_members, self.num_layers, self.width = num_members, num_layers, width
        self.lr, self.epochs, self.batch_size = lr, epochs, batch_size
        self.beta2, self.eps, self.keras_adam = beta2, eps, keras_adam
        self.standardise = standardise
        self.rng = np.random.default_rng(int(seed))
        self.theta = np.zeros((num_members, 0), dtype=np.float32)
        self.weights: list[np.ndarray] = []  # views into theta: members x in x out
        self.biases: list[np.ndarray] = []  # views into theta: members x 1 x out
        self._mean, self._std = 0.0, 1.0

    def _views(self, flat: np.ndarray, dims: list[int]) -> tuple[list[np.ndarray], ...]:
        """Per-layer weight / bias views of a members x P buffer."""
        ws, bs, off = [], [], 0
        m = flat.shape[0]
        for a, b in itertools.pairwise(dims):
            ws.append(flat[:, off : off + a * b].reshape(m, a, b))
            off += a * b
            bs.append(flat[:, off : off + b].reshape(m, 1, b))
            off += b
        return ws, bs

    def _init(self, in_dim: int) -> list[int]:
        dims = [in_dim] + [self.width] * self.num_layers + [1]
        size = sum(a * b + b for a, b in itertools.pairwise(dims))
        self.theta = np.zeros((self.num_members, size), dtype=np.float32)
        self.weights, self.biases = self._views(self.theta, dims)
        for w in self.weights:
            a, b = w.shape[1:]
            bound = float(np.sqrt(6.0 / (a + b)))  # Xavier uniform; biases start at zero
            w[...] = self.rng.uniform(-bound, bound, size=w.shape)
        return dims

    def _forward(self, x: np.ndarray, keep: list[np.ndarray] | None = None) -> np.ndarray:
        """``x``: members x batch x in -> members x batch predictions; ``keep`` collects
        each layer's input for the backward pass."""
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if keep is not None:
                keep.append(x)
            x = x @ w + b
            if i < last:
                x = np.maximum(x, 0.0)
        return x[..., 0]

    def _dims(self) -> list[int]:
        return [self.weights[0].shape[1]] + [w.shape[2] for w in self.weights]

    def _backward(self, x: np.ndarray, y: np.ndarray, grad: np.ndarray, views: Any) -> np.ndarray:
        """Write the gradient of the summed per-member mean absolute error into ``grad``
        (through its per-layer ``views``); returns the errors."""
        inputs: list[np.ndarray] = []
        err = self._forward(x, inputs) - y
        gws, gbs = views
        # d|e|/de = sign(e) (0 at 0, as autograd), averaged over the batch
        delta = (np.sign(err) / err.shape[1])[..., None]
        for i in range(len(self.weights) - 1, -1, -1):
            h = inputs[i]
            np.matmul(h.transpose(0, 2, 1), delta, out=gws[i])
            np.sum(delta, axis=1, keepdims=True, out=gbs[i])
            if i:
                # h = relu(z): the gradient passes where h > 0
                delta = (delta @ self.weights[i].transpose(0, 2, 1)) * (h > 0)
        return err

    def loss_and_grad(self, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """Sum over members of each member's mean absolute error on ``x`` (members x batch x
        in) against ``y`` (members x batch), and its gradient w.r.t. ``theta``."""
        grad = np.zeros_like(self.theta)
        err = self._backward(x, y, grad, self._views(grad, self._dims()))
        return float(np.abs(err).mean(axis=1).sum()), grad

    def fit(self, x: np.ndarray, y: np.ndarray) -> None:
        """Train every member from scratch on ``(x, y)``: Adam on the mean absolute error,
        an independent shuffle per member and epoch."""
        n = len(y)
        if self.standardise:
            self._mean = float(np.mean(y))
            self._std = float(np.std(y)) or 1.0
        else:
            self._mean, self._std = 0.0, 1.0
        xs = np.asarray(x, dtype=np.float32)
        ys = ((np.asarray(y, dtype=np.float64) - self._mean) / self._std).astype(np.float32)
        dims = self._init(xs.shape[1])
        beta1, beta2, eps = 0.9, self.beta2, self.eps
        grad = np.zeros_like(self.theta)
        views = self._views(grad, dims)
        m, v, tmp = (np.zeros_like(self.theta) for _ in range(3))
        step = 0
        for _ in range(self.epochs):
            order = np.argsort(self.rng.random((self.num_members, n)), axis=1)
            for start in range(0, n, self.batch_size):
                idx = order[:, start : start + self.batch_size]
                self._backward(xs[idx], ys[idx], grad, views)
                step += 1
                m *= beta1
                m += (1.0 - beta1) * grad
                v *= beta2
                np.multiply(grad, grad, out=tmp)
                tmp *= 1.0 - beta2
                v += tmp
                if self.keras_adam:
                    # Keras: theta -= lr * sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + eps)
                    np.sqrt(v, out=tmp)
                    tmp += eps
                    np.divide(m, tmp, out=tmp)
                    tmp *= self.lr * np.sqrt(1.0 - beta2**step) / (1.0 - beta1**step)
                else:
                    # torch: theta -= lr / (1 - beta1^t) * m / (sqrt(v / (1 - beta2^t)) + eps)
                    np.multiply(v, 1.0 / (1.0 - beta2**step), out=tmp)
                    np.sqrt(tmp, out=tmp)
                    tmp += eps
                    np.divide(m, tmp, out=tmp)
                    tmp *= self.lr / (1.0 - beta1**step)
                self.theta -= tmp

    def predict(self, x: np.ndarray) -> np.ndarray:
        """members x len(x) predictions, on the scale of the training targets."""
        xs = np.broadcast_to(np.asarray(x, dtype=np.float32), (self.num_members, *np.shape(x)))
        return self._forward(xs) * self._std + self._mean


#: Settings of the two BANANAS variants; an explicit keyword overrides its variant's value.
#: ``naszilla`` (default): the released code, naszilla/naszilla at 7e65491 --
#: ``nas_algorithms.py:163-180`` (``num_arches_to_mutate=1``, ``max_mutation_rate=1``,
#: ``predictor_encoding='trunc_path'``, ``mutate_encoding='adj'``), ``params.py:72-74``
#: (5 members, 10 x 20, mae, 150 epochs, batch 32, lr 0.01), ``meta_neural_net.py``
#: ``fit`` (Keras ``Adam(lr, beta_1=.9, beta_2=.99)``, Keras' epsilon 1e-7 in its
#: ``sqrt(v) + eps`` form; targets fed raw: the ``val_loss``, 100 - accuracy),
#: ``nas_bench_201/cell_201.py:179-200`` (each of the 6 edges changes with probability
#: ``mutation_rate / (OP_SPOTS - 2)`` = 1/4, to a different op). ``nasforge-v1``: what this
#: class did before (README figures made before this change): 200 epochs (paper Sec. 5),
#: torch Adam defaults (0.999, 1e-8), standardised accuracy targets, 2 parents
#: (NASLib's ``num_arches_to_mutate``), exactly one edge changed per mutation (the space's
#: ``mutate``), the full path encoding.
BANANAS_VARIANTS: dict[str, dict[str, Any]] = {
    "naszilla": {
        "num_arches_to_mutate": 1,
        "epochs": 150,
        "beta2": 0.99,
        "eps": 1e-7,
        "keras_adam": True,
        "targets": "loss",
        "encoding": "trunc_path",
        "mutation": "per_position",
    },
    "nasforge-v1": {
        "num_arches_to_mutate": 2,
        "epochs": 200,
        "beta2": 0.999,
        "eps": 1e-8,
        "keras_adam": False,
        "targets": "standardised",
        "encoding": "path",
        "mutation": "one_position",
    },
}
#: ``targets``: ``loss`` fits the raw ``100 - valid_acc`` (naszilla's ``val_loss``);
#: ``standardised`` the accuracy with mean 0 and std 1.
TARGETS = ("loss", "standardised")
#: ``mutation``: ``per_position`` changes each position with probability
#: ``rate / (positions - 2)`` (naszilla's formula; 1/4 on NB201's 6 edges); ``one_position``
#: is the space's own ``mutate`` (one position, always).
MUTATIONS = ("per_position", "one_position")


@BLACKBOX.register("bananas")
class Bananas(Searcher):
    """BANANAS with independent Thompson sampling over a mutation-based candidate pool.

    ``variant`` picks the defaults of the settings left as ``None`` (see
    :data:`BANANAS_VARIANTS`): ``naszilla`` (the released code, default) or ``nasforge-v1``.
    ``encoding`` ``None`` is the variant's encoding when the space offers it, else ``path``.
    """

    name = "bananas"

    def __init__(
        self,
        *,
        seed: int = 0,
        variant: str = "naszilla",
        num_init: int = 10,
        k: int = 10,
        num_candidates: int = 100,
        num_arches_to_mutate: int | None = None,
        max_mutations: int = 1,
        patience_factor: int = 5,
        num_ensemble: int = 5,
        num_layers: int = 10,
        layer_width: int = 20,
        lr: float = 0.01,
        epochs: int | None = None,
        batch_size: int = 32,
        beta2: float | None = None,
        targets: str | None = None,
        mutation: str | None = None,
        encoding: str | None = None,
    ) -> None:
        super().__init__(seed=seed)
        n = self.name
        if variant not in BANANAS_VARIANTS:
            raise SearchError(
                f"{n} variant {variant!r} is unknown; expected one of {list(BANANAS_VARIANTS)}"
            )
        self.variant = variant
        preset = BANANAS_VARIANTS[variant]

        def pick(value: Any, key: str) -> Any:
            return preset[key] if value is None else value

        self.num_init = require_int(n, "num_init", num_init, minimum=2)
        self.k = require_int(n, "k", k, minimum=1)
        self.num_candidates = require_int(n, "num_candidates", num_candidates, minimum=1)
        self.num_arches_to_mutate = require_int(
            n, "num_arches_to_mutate", pick(num_arches_to_mutate, "num_arches_to_mutate"), minimum=1
        )
        self.max_mutations = require_int(n, "max_mutations", max_mutations, minimum=1)
        self.patience_factor = require_int(n, "patience_factor", patience_factor, minimum=1)
        self.num_ensemble = require_int(n, "num_ensemble", num_ensemble, minimum=2)
        self.num_layers = require_int(n, "num_layers", num_layers, minimum=1)
        self.layer_width = require_int(n, "layer_width", layer_width, minimum=1)
        self.lr = require_float(n, "lr", lr, low=0.0, low_open=True)
        self.epochs = require_int(n, "epochs", pick(epochs, "epochs"), minimum=1)
        self.batch_size = require_int(n, "batch_size", batch_size, minimum=1)
        self.beta2 = require_float(
            n, "beta2", pick(beta2, "beta2"), low=0.0, high=1.0, high_open=True
        )
        self.eps, self.keras_adam = float(preset["eps"]), bool(preset["keras_adam"])
        self.targets = pick(targets, "targets")
        if self.targets not in TARGETS:
            raise SearchError(f"{n} targets {self.targets!r} is unknown; expected one of {TARGETS}")
        self.mutation = pick(mutation, "mutation")
        if self.mutation not in MUTATIONS:
            raise SearchError(
                f"{n} mutation {self.mutation!r} is unknown; expected one of {MUTATIONS}"
            )
        if encoding is not None and not isinstance(encoding, str):
            raise SearchError(f"{n} encoding {encoding!r} must be a string")
        self._encoding_arg = encoding
        self.encoding = encoding if encoding is not None else preset["encoding"]
        self._reset_state()

    def _reset_state(self) -> None:
        self.data: dict[Hashable, float] = {}
        self.queue: list[Any] = []
        self.pending: set[Hashable] = set()
        self.fits = 0

    def _start(self, context: SearchContext) -> None:
        offered = context.space.encodings()
        if self._encoding_arg is None:
            preferred = BANANAS_VARIANTS[self.variant]["encoding"]
            self.encoding = preferred if preferred in offered else "path"
        if self.mutation == "per_position":
            require_categorical(context.space, f"{self.name} mutation 'per_position'")
        if self.encoding not in offered:
            raise SearchError(
                f"{self.name} encoding {self.encoding!r} is not offered by space "
                f"{context.space.name!r}; expected one of {context.space.encodings()}"
            )
        self._reset_state()

    # -- the initial design (a subclass may choose it otherwise) ---------------------------
    def _initial_arch(self) -> Any | None:
        """The next arch of the initial design, or None once it is complete."""
        if len(self.data) + len(self.pending) >= self.num_init:
            return None
        return self._fresh(lambda: self.space.sample(self.rng))

    def _fresh(self, draw: Any, tries: int = 1000) -> Any:
        arch = draw()
        for _ in range(tries):
            if arch not in self.data and arch not in self.pending:
                break
            arch = draw()
        return arch

    def _ask(self) -> Ask:
        arch = self._initial_arch()
        if arch is None:
            if not self.queue:
                self.queue = self._propose()
            arch = self.queue.pop(0)
        self.pending.add(arch)
        return Ask(arch)

    def _tell(self, told: Told) -> None:
        self.pending.discard(told.arch)
        if told.arch not in self.data:
            self.data[told.arch] = told.valid_acc

    # -- one BO iteration -----------------------------------------------------------------
    def _candidates(self) -> list[Any]:
        # parents best first; when their mutants are all known already, the next-best archs
        # are mutated too, up to num_arches_to_mutate * patience_factor parents, until
        # num_candidates new archs are found (naszilla/bananas ``data.py`` get_candidates,
        # patience_factor=5): without it a search whose top archs' neighbourhoods are spent
        # refits the ensemble for one or two candidates at a time
        ranked = sorted(self.data.items(), key=lambda kv: -kv[1])
        parents = [a for a, _ in ranked[: self.num_arches_to_mutate * self.patience_factor]]
        per_parent = max(1, self.num_candidates // self.num_arches_to_mutate // self.max_mutations)
        out: list[Any] = []
        seen = set(self.data) | self.pending
        for parent in parents:
            if len(out) >= self.num_candidates:
                break
            for _ in range(per_parent):
                for child in self._mutants(parent):
                    if child not in seen:
                        seen.add(child)
                        out.append(child)
        while not out:  # every mutant known already: fall back to fresh random archs
            arch = self.space.sample(self.rng)
            if arch not in seen:
                out.append(arch)
        return out

    def _mutants(self, parent: Any) -> list[Any]:
        """The mutants one pass of the candidate loop draws from ``parent``: naszilla's
        ``for rate in range(1, max_mutation_rate + 1)`` (one mutant per rate,
        ``nas_benchmarks.py:157-161``) for ``per_position``; one mutant, ``max_mutations``
        one-position moves away, for ``one_position``."""
        if self.mutation == "one_position":
            child = parent
            for _ in range(self.max_mutations):
                child = self.space.mutate(child, self.rng)
            return [child]
        return [self._mutate_per_position(parent, r) for r in range(1, self.max_mutations + 1)]

    def _mutate_per_position(self, parent: Any, rate: int) -> Any:
        """naszilla ``Cell201.mutate`` (``cell_201.py:188-200``) on any categorical space:
        each position changes with probability ``rate / (positions - 2)`` to a different,
        uniformly chosen option (the result may equal ``parent``; the caller drops it)."""
        space = self.space
        radices = [len(c.options) for c in space.choices()]
        prob = rate / max(1, len(radices) - 2)
        picks = list(space.to_choices(parent))
        for pos, k in enumerate(radices):
            if k > 1 and self.rng.random() < prob:
                others = [o for o in range(k) if o != picks[pos]]
                picks[pos] = others[int(self.rng.integers(len(others)))]
        return space.from_choices(picks)

    def _propose(self) -> list[Any]:
        archs = list(self.data)
        x = np.stack([self.space.encode(a, self.encoding) for a in archs])
        acc = np.asarray([self.data[a] for a in archs], dtype=np.float64)
        # naszilla fits and ranks the raw validation loss (100 - accuracy, in percent)
        loss_targets = self.targets == "loss"
        y = 100.0 - acc if loss_targets else acc
        ensemble = MLPEnsemble(
            num_members=self.num_ensemble,
            num_layers=self.num_layers,
            width=self.layer_width,
            lr=self.lr,
            epochs=self.epochs,
            batch_size=self.batch_size,
            beta2=self.beta2,
            eps=self.eps,
            keras_adam=self.keras_adam,
            standardise=self.targets == "standardised",
            seed=int(self.rng.integers(2**31)),
        )
        ensemble.fit(x, y)
        self.fits += 1
        cands = self._candidates()
        pred = ensemble.predict(np.stack([self.space.encode(a, self.encoding) for a in cands]))
        if loss_targets:
            pred = 100.0 - pred  # back to accuracy: the same ranking as naszilla's lowest loss
        # ITS: one independent draw per candidate from N(mean, std) of the ensemble
        draws = self.rng.normal(pred.mean(axis=0), pred.std(axis=0))
        order = np.argsort(-draws, kind="stable")[: self.k]
        return [cands[int(i)] for i in order]

    def config(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "num_init": self.num_init,
            "k": self.k,
            "num_candidates": self.num_candidates,
            "num_arches_to_mutate": self.num_arches_to_mutate,
            "max_mutations": self.max_mutations,
            "patience_factor": self.patience_factor,
            "num_ensemble": self.num_ensemble,
            "num_layers": self.num_layers,
            "layer_width": self.layer_width,
            "lr": self.lr,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "beta2": self.beta2,
            "eps": self.eps,
            "keras_adam": self.keras_adam,
            "targets": self.targets,
            "mutation": self.mutation,
            "encoding": self.encoding,
        }

"""What every one-shot (weight-sharing) method shares: its config type and its interface.

A method owns a :class:`~nasforge.nn.supernet.NB201Supernet`, the weight optimizer (SGD +
cosine, as every NB201 search run), and its own architecture state (alphas, a controller,
random generators). The search loop (:mod:`nasforge.search.oneshot.loop`) drives it:

    setup -> for each epoch: begin_epoch -> train_step x steps -> end_epoch -> derive
          -> finalize

and checkpoints ``state_dict()`` after every epoch. Methods differ only in how an edge
mixes its ops and how the architecture state is updated, so each is one small file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from nasforge.errors import SearchError
from nasforge.nn.supernet import NB201Supernet
from nasforge.spaces.nb201 import NUM_EDGES, NUM_OPS, OPS, Arch

Batch = tuple[torch.Tensor, torch.Tensor]
_SKIP_ID = OPS.index("skip_connect")
#: The values of ``OneShotConfig.score_bn`` (see its docstring).
SCORE_BN = ("running", "batch")


@dataclass(frozen=True)
class OneShotConfig:
    """Hyper-parameters shared by the one-shot methods.

    Defaults are the NAS-Bench-201 DARTS settings of D-X-Y/AutoDL-Projects
    (``configs/nas-benchmark/algos/DARTS.config``: 50 epochs, SGD lr 0.025 nesterov momentum
    0.9, cosine to 0.001, batch 64, weight decay 5e-4;
    ``scripts-search/NAS-Bench-201-algos/DARTS-V1.sh``: C=16, N=5 (lines 20-21), arch Adam
    lr 3e-4, weight decay 1e-3, ``track_running_stats`` from its second argument, 1 in
    ``docs/NAS-Bench-201.md:227``; betas (0.5, 0.999) and ``--gradient_clip`` default 5 in
    ``exps/NAS-Bench-201-algos/DARTS-V1.py:383``). Each
    method's subclass overrides what its own published config changes. ``replace`` makes
    a validated copy, which is how tiny CPU runs shrink a published config.

    ``steps_per_epoch`` caps the weight steps per epoch and ``valid_batches`` the batches
    of each per-epoch evaluation (None = the whole split, as published). ``t_max`` is the
    cosine period in epochs (None = ``epochs``; xautodl ``get_optim_scheduler`` reads
    ``T_max = getattr(config, "T_max", config.epochs)``).

    ``score_bn`` is how BatchNorm normalises when a single path is scored (SETN / RSPS /
    ENAS candidate selection, ENAS' reward, the one-shot accuracy of a derived arch):
    ``"running"`` (default, official) puts the supernet in eval mode, so the running
    statistics accumulated during the search are used (``SETN.py:119``,
    ``RANDOM-NAS.py:109``, ``ENAS.py:123,206``); ``"batch"`` normalises with the scored
    batch's own statistics and restores the buffers afterwards -- our option: the running
    statistics average over many paths and describe no single one, which can blur a
    ranking of single paths.
    """

    epochs: int = 50
    batch_size: int = 64
    lr: float = 0.025
    eta_min: float = 0.001
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    grad_clip: float = 5.0
    arch_lr: float = 3e-4
    arch_betas: tuple[float, float] = (0.5, 0.999)
    arch_weight_decay: float = 1e-3
    C: int = 16
    N: int = 5
    track_running_stats: bool = True
    eval_batch_size: int = 512
    steps_per_epoch: int | None = None
    valid_batches: int | None = None
    t_max: int | None = None
    score_bn: str = "running"

    def __post_init__(self) -> None:
        if self.score_bn not in SCORE_BN:
            raise SearchError(
                f"config field score_bn={self.score_bn!r} invalid; expected one of {SCORE_BN}"
            )
        for name in ("epochs", "batch_size", "C", "N", "eval_batch_size"):
            check_int(self, name)
        for name in ("steps_per_epoch", "valid_batches", "t_max"):
            check_int(self, name, optional=True)
        for name in (
            "lr",
            "eta_min",
            "weight_decay",
            "grad_clip",
            "arch_lr",
            "arch_weight_decay",
            "momentum",
        ):
            check_float(self, name)
        for name in ("nesterov", "track_running_stats"):
            check_bool(self, name)
        if self.eta_min > self.lr:
            raise SearchError(f"eta_min={self.eta_min} exceeds lr={self.lr}; expected <= lr")
        betas = tuple(self.arch_betas)
        if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            raise SearchError(
                f"arch_betas={self.arch_betas!r} invalid; expected two floats in [0, 1)"
            )
        object.__setattr__(self, "arch_betas", (float(betas[0]), float(betas[1])))

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def replace(self, **overrides: Any) -> OneShotConfig:
        """A validated copy with ``overrides`` applied; unknown fields are an error."""
        known = self.field_names()
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise SearchError(
                f"unknown config field(s) {unknown} for {type(self).__name__}; "
                f"expected some of: {', '.join(known)}"
            )
        values = dict(overrides)
        for name, value in list(values.items()):
            # Accept ints for float fields (e.g. ``lr=1``) and lists for the betas tuple.
            default = getattr(self, name)
            if (
                isinstance(default, float)
                and isinstance(value, int)
                and not isinstance(value, bool)
            ):
                values[name] = float(value)
            if isinstance(default, tuple) and isinstance(value, list):
                values[name] = tuple(value)
        return dataclasses.replace(self, **values)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


def check_float(config: Any, name: str, *, positive: bool = False) -> None:
    """Raise a :class:`SearchError` naming ``config.<name>`` unless it is a finite real
    number >= 0 (> 0 with ``positive``); bools and strings are rejected."""
    value = getattr(config, name)
    expected = "a finite float > 0" if positive else "a finite float >= 0"
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
        or (positive and value == 0)
    ):
        raise SearchError(f"config field {name}={value!r} invalid; expected {expected}")


def check_int(config: Any, name: str, *, minimum: int = 1, optional: bool = False) -> None:
    """Raise a :class:`SearchError` naming ``config.<name>`` unless it is an int >=
    ``minimum`` (or None, with ``optional``); bools are rejected."""
    value = getattr(config, name)
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        expected = f"None or an int >= {minimum}" if optional else f"an int >= {minimum}"
        raise SearchError(f"config field {name}={value!r} invalid; expected {expected}")


def check_bool(config: Any, name: str) -> None:
    """Raise a :class:`SearchError` naming ``config.<name>`` unless it is a bool."""
    value = getattr(config, name)
    if not isinstance(value, bool):
        raise SearchError(f"config field {name}={value!r} invalid; expected True or False")


def cosine_lr(config: OneShotConfig, epoch: int) -> float:
    """The weight learning rate of (0-based) ``epoch``, constant within the epoch.

    xautodl ``xautodl/procedures/optimizers.py:70-100`` ``CosineAnnealingLR.get_lr``: without warm-up
    the cosine uses only the integer ``current_epoch`` (``current_iter``, updated every
    step by ``scheduler.update(None, step / len(loader))``, matters only during warm-up):
    ``eta_min + (lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2`` with ``T_max`` =
    ``config.t_max`` or ``epochs``; ``eta_min`` from ``epochs`` on. With ``T_max`` <
    ``epochs`` (ENAS' config) the schedule is periodic, as in the official code.
    """
    if epoch >= config.epochs:
        return config.eta_min
    t_max = config.t_max if config.t_max is not None else config.epochs
    return (
        config.eta_min + (config.lr - config.eta_min) * (1 + math.cos(math.pi * epoch / t_max)) / 2
    )


def entropy(probs: np.ndarray) -> np.ndarray:
    """Per-row Shannon entropy (nats) of a row-stochastic matrix."""
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0)
    # Renormalise in float64: float32 softmax rows sum to 1 only up to ~1e-7, which can put
    # the entropy of a near-uniform row above log(num_ops).
    p = p / p.sum(axis=-1, keepdims=True)
    return -(p * np.log(p)).sum(axis=-1)


def skip_share(arch: Arch) -> float:
    """The fraction of edges that are ``skip_connect`` (the DARTS collapse indicator)."""
    return sum(op == "skip_connect" for op in arch.ops) / NUM_EDGES


def top1_correct(logits: torch.Tensor, targets: torch.Tensor) -> int:
    """Number of top-1 hits (a host sync: for evaluation, not per training step)."""
    return int((logits.argmax(dim=1) == targets).sum())


#: What a training step returns: (summed loss over the batch, number correct), both 0-d
#: detached tensors on the method's device so the loop accumulates them without a host
#: sync per step, and the batch size.
StepStats = tuple[torch.Tensor, torch.Tensor, int]


def step_stats(loss: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> StepStats:
    """The :data:`StepStats` of a batch with mean loss ``loss`` (no host sync)."""
    n = int(targets.shape[0])
    with torch.no_grad():
        correct = (logits.detach().argmax(dim=1) == targets).sum()
        return loss.detach().double() * n, correct, n


class SearchContext:
    """What the loop lends a method beyond its training steps: validation batches.

    ``valid_batches()`` yields the (un-augmented) validation split in a fixed order, cycling
    forever, so "evaluate candidate i on the next batch" (the official ``get_best_arch``)
    is reproducible; ``full_valid()`` is one pass over it (capped by ``valid_batches`` of
    the config); ``arch_batches()`` yields augmented, shuffled validation batches (what
    ENAS trains its controller on).
    """

    def __init__(
        self,
        valid_pass: Callable[[], Iterator[Batch]],
        arch_batches: Callable[[], Iterator[Batch]],
    ) -> None:
        self._valid_pass = valid_pass
        self._arch_batches = arch_batches

    def valid_batches(self) -> Iterator[Batch]:
        while True:
            empty = True
            for batch in self._valid_pass():
                empty = False
                yield batch
            if empty:
                raise SearchError("the validation split is empty; cannot evaluate candidates")

    def full_valid(self) -> list[Batch]:
        return list(self._valid_pass())

    def arch_batches(self) -> Iterator[Batch]:
        return self._arch_batches()


def fill_missing_grads(params: Iterator[nn.Parameter] | Sequence[nn.Parameter]) -> None:
    """Give every parameter without a gradient a zero one, so the optimizer applies weight
    decay and momentum to it from now on (as the official runs did for every weight an
    earlier backward reached)."""
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)


@contextlib.contextmanager
def preserved_buffers(net: nn.Module) -> Iterator[None]:
    """Snapshot every buffer of ``net`` (BatchNorm running statistics, ...) and restore it on
    exit, so forwards inside the block leave no trace in them."""
    saved = [b.clone() for b in net.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for b, s in zip(net.buffers(), saved, strict=True):
                b.copy_(s)


class OneShotSearch(ABC):
    """Base class of the one-shot methods; subclasses register in ``ALGORITHMS``.

    Build with ``Method(config=None, **overrides)``: the method's published config with
    ``overrides`` applied (validated).
    """

    kind: ClassVar[str] = "oneshot"
    name: ClassVar[str] = ""
    #: The search space whose supernet the method builds.
    space_name: ClassVar[str] = "nb201"
    config_class: ClassVar[type[OneShotConfig]] = OneShotConfig
    #: Whether ``train_step`` consumes a batch of the arch (valid) split every step.
    uses_arch_batches: ClassVar[bool] = True
    #: Whether the supernet's search-mode forward is the derived arch's single path (then
    #: the loop does not evaluate the derived arch a second time).
    eval_is_derived: ClassVar[bool] = False
    #: Weight steps per search epoch, set by the loop before the first epoch (a method
    #: whose schedule moves per iteration reads it).
    steps_per_epoch: int | None = None

    def split_rule(self) -> str:
        """How the loop halves a dataset without a ``valid`` split: ``random`` (halves drawn
        from the seed) or ``prefix`` (the first half trains the weights)."""
        return "random"

    def arch_batch_rule(self) -> str:
        """How the loop draws the arch batch of each step: ``cycle`` (epochs of the arch
        split, one permutation each, as xautodl's paired loader) or ``fresh`` (the first
        batch of a new permutation every step)."""
        return "cycle"

    def __init__(self, config: OneShotConfig | None = None, **overrides: Any) -> None:
        if config is None:
            config = self.config_class()
        elif not isinstance(config, self.config_class):
            raise SearchError(
                f"{self.name} needs a {self.config_class.__name__}, got {type(config).__name__}"
            )
        self.config = config.replace(**overrides) if overrides else config
        self.supernet: NB201Supernet | None = None
        self.device = torch.device("cpu")

    # -- construction -----------------------------------------------------------------------
    def partial_k(self) -> int:
        return 1

    def pool_bn(self) -> bool:
        """Whether the mixed op follows its pooling op with a BN(affine=False) (PC-DARTS)."""
        return False

    def affine_bn(self) -> bool:
        """Whether the candidate ops' BatchNorms carry a scale and shift (BN-NAS)."""
        return False

    def setup(self, num_classes: int, seed: int, device: str | torch.device = "cpu") -> None:
        """Build the supernet (weights initialised from ``seed``), optimizers and arch state."""
        self.device = torch.device(device)
        cfg = self.config
        # Module initialisers draw from the global generator: seed it locally and put it
        # back, so the search is a function of ``seed`` alone and leaves no trace.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.supernet = self.build_supernet(num_classes).to(self.device)
            self.generator = torch.Generator().manual_seed(seed + 1)
            self.rng = np.random.default_rng(seed + 2)
            self.w_optimizer = torch.optim.SGD(
                self.supernet.parameters(),
                lr=cfg.lr,
                momentum=cfg.momentum,
                weight_decay=cfg.weight_decay,
                nesterov=cfg.nesterov and cfg.momentum > 0,
            )
            self.setup_arch()

    def build_supernet(self, num_classes: int) -> nn.Module:
        """The supernet of the method's space (here NB201; a space's method variant
        overrides it, with :meth:`new_alphas`' shape, :meth:`derive` and :meth:`arch_fields`)."""
        cfg = self.config
        return NB201Supernet(
            cfg.C,
            cfg.N,
            num_classes,
            partial_k=self.partial_k(),
            pool_bn=self.pool_bn(),
            affine=self.affine_bn(),
            track_running_stats=cfg.track_running_stats,
        )

    @abstractmethod
    def setup_arch(self) -> None:
        """Create the architecture state (parameters, optimizer, controller)."""

    def new_alphas(self, rows: int = NUM_EDGES, cols: int = NUM_OPS) -> nn.Parameter:
        """Architecture logits initialised as in xautodl: ``1e-3 * randn(edges, ops)``."""
        init = 1e-3 * torch.randn(rows, cols, generator=self.generator)
        return nn.Parameter(init.to(self.device))

    def arch_adam(self, params: list[nn.Parameter]) -> torch.optim.Adam:
        cfg = self.config
        return torch.optim.Adam(
            params, lr=cfg.arch_lr, betas=cfg.arch_betas, weight_decay=cfg.arch_weight_decay
        )

    # -- per step / epoch -----------------------------------------------------------------------
    def epoch_lr(self, epoch: int) -> float:
        """The weight learning rate of (0-based) ``epoch`` (default :func:`cosine_lr`)."""
        return cosine_lr(self.config, epoch)

    def begin_epoch(self, epoch: int) -> None:  # noqa: B027 (an optional hook)
        """Hook at the start of epoch ``epoch`` (0-based), e.g. GDAS' temperature."""

    @abstractmethod
    def train_step(self, base: Batch, arch: Batch | None, epoch: int) -> StepStats:
        """One search step; returns the weight step's :data:`StepStats` (device tensors)."""

    def end_epoch(self, epoch: int, ctx: SearchContext) -> None:  # noqa: B027 (optional hook)
        """Hook after the epoch's steps, e.g. ENAS' controller training."""

    def weight_step(
        self,
        logits_fn: Callable[[torch.Tensor], torch.Tensor],
        batch: Batch,
        clip_also: Sequence[torch.Tensor] = (),
    ) -> StepStats:
        """SGD step on the shared weights for the loss of ``logits_fn`` on ``batch``.

        Gradients are zero-filled, not dropped (``set_to_none=False``): the official runs
        (PyTorch 1.x, whose ``zero_grad`` zero-filled) give every weight that has ever had
        a gradient weight decay and momentum at every step, including the ops a
        single-path step does not use. The clipping norm covers the shared weights plus
        ``clip_also`` (the architecture parameters where the official code clips
        ``network.parameters()`` of a model that holds them).
        """
        x, y = batch
        assert self.supernet is not None
        self.w_optimizer.zero_grad(set_to_none=False)
        logits = logits_fn(x)
        loss = nn.functional.cross_entropy(logits, y)
        loss.backward()
        if self.config.grad_clip > 0:
            params = [*self.supernet.parameters(), *clip_also]
            nn.utils.clip_grad_norm_(params, self.config.grad_clip)
        self.w_optimizer.step()
        return step_stats(loss, logits, y)

    # -- architecture views ---------------------------------------------------------------------
    @abstractmethod
    def probabilities(self) -> np.ndarray:
        """The current per-edge op distribution, shape (6, 5), rows summing to 1."""

    def derive(self, ctx: SearchContext) -> Arch:
        """The arch the method would return now; default: per-edge argmax of the distribution."""
        return Arch.from_op_ids(np.argmax(self.probabilities(), axis=1).tolist())

    def finalize(self, ctx: SearchContext) -> Arch:
        """The arch returned at the end of the search (default: :meth:`derive`)."""
        return self.derive(ctx)

    def arch_fields(self, arch: Any) -> dict[str, Any]:
        """What records and results say of a derived arch: its string, index and
        ``skip_connect`` share (the collapse indicator)."""
        return {
            "arch": arch.to_string(),
            "arch_index": arch.to_index(),
            "skip_share": skip_share(arch),
        }

    def write_arch(self, arch: Any, out_dir: Any) -> dict[str, str]:
        """Write the final arch in the space's own file formats into ``out_dir``; returns
        {kind: path} (none for NB201, whose arch string is in the records)."""
        return {}

    def plot(
        self,
        records: list[dict[str, Any]],
        path: Any,
        title: str = "",
        *,
        warmup: int = 0,
        trained: dict[str, float] | None = None,
    ) -> Any:
        """Draw the per-epoch ``records`` to ``path`` (default: the NB201 per-edge plot,
        warm-up epochs shaded, ``trained`` accuracies of the derived arch as lines)."""
        from nasforge.report.oneshot import plot_search

        return plot_search(records, path, title=title, warmup=warmup, trained=trained)

    @torch.no_grad()
    def eval_logits(self, x: torch.Tensor, derived: Arch) -> torch.Tensor:
        """Logits of the supernet in the method's search mode (validation metrics)."""
        assert self.supernet is not None
        return self.supernet.forward_arch(x, derived)

    def extra_record(self) -> dict[str, Any]:
        """Method-specific per-epoch values (temperature, edge weights, ...)."""
        return {}

    @contextlib.contextmanager
    def scoring_statistics(self) -> Iterator[None]:
        """The BatchNorm mode single paths are scored in (``config.score_bn``): eval mode
        (running statistics, official) or :meth:`batch_statistics`; the supernet's
        train/eval flag is restored on exit."""
        assert self.supernet is not None
        if self.config.score_bn == "batch":
            with self.batch_statistics():
                yield
            return
        net = self.supernet
        was_training = net.training
        net.eval()
        try:
            yield
        finally:
            net.train(was_training)

    @contextlib.contextmanager
    def batch_statistics(self) -> Iterator[None]:
        """Evaluate with BatchNorm on batch statistics, leaving the running ones untouched.

        The running statistics of a supernet are averaged over a mixture of paths (every
        op of DARTS' weighted sum, or many sampled archs) and do not describe any one
        single path, so one-shot accuracies of single paths are measured with the batch's
        own statistics (train-mode BN) and the buffers are restored afterwards.
        """
        assert self.supernet is not None
        net = self.supernet
        was_training = net.training
        with preserved_buffers(net):
            net.train()
            try:
                yield
            finally:
                net.train(was_training)

    def evaluate_arch(self, arch: Arch, batches: list[Batch]) -> float:
        """Top-1 accuracy (percent) of ``arch``'s single path over ``batches``.

        Single-path methods (``eval_is_derived``: GDAS, SETN, ENAS, RSPS) score as
        :meth:`scoring_statistics` says -- how the official code scores candidates. The
        weighted-sum methods (DARTS, PC-DARTS, single-level DARTS) never score single paths
        in the official code; their running statistics were gathered on the mixture of all
        ops, so the derived arch's one-shot accuracy (our own diagnostic) is measured with
        :meth:`batch_statistics`.
        """
        assert self.supernet is not None
        correct = total = 0
        mode = self.scoring_statistics() if self.eval_is_derived else self.batch_statistics()
        with mode, torch.no_grad():
            for x, y in batches:
                correct += top1_correct(self.supernet.forward_arch(x, arch), y)
                total += int(y.shape[0])
        return 100.0 * correct / max(total, 1)

    # -- checkpoints --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        assert self.supernet is not None
        return {
            "supernet": self.supernet.state_dict(),
            "w_optimizer": self.w_optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "rng": self.rng.bit_generator.state,
            # Which weights hold a (zero-filled) gradient: they get weight decay and momentum
            # at every step, so a resumed run must know them to continue identically.
            "has_grad": [p.grad is not None for p in self.supernet.parameters()],
            "arch": self.arch_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        assert self.supernet is not None
        self.supernet.load_state_dict(state["supernet"])
        self.w_optimizer.load_state_dict(state["w_optimizer"])
        self.generator.set_state(state["generator"])
        self.rng.bit_generator.state = state["rng"]
        for p, has in zip(self.supernet.parameters(), state["has_grad"], strict=True):
            p.grad = torch.zeros_like(p) if has else None
        self.load_arch_state(state["arch"])

    @abstractmethod
    def arch_state(self) -> dict[str, Any]:
        """The architecture state to checkpoint."""

    @abstractmethod
    def load_arch_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`arch_state`."""


class AlphaSearch(OneShotSearch):
    """Shared parts of the methods whose architecture state is one logit matrix ``alpha``
    trained by Adam (DARTS, GDAS, SETN, PC-DARTS, single-level DARTS)."""

    def setup_arch(self) -> None:
        self.alphas = self.new_alphas()
        self.a_optimizer = self.arch_adam([self.alphas])

    def probabilities(self) -> np.ndarray:
        return torch.softmax(self.alphas.detach(), dim=-1).cpu().double().numpy()

    def mix_weights(self, detach: bool = False) -> torch.Tensor:
        alphas = self.alphas.detach() if detach else self.alphas
        return torch.softmax(alphas, dim=-1)

    def arch_step(
        self, logits_fn: Callable[[torch.Tensor], torch.Tensor], batch: Batch
    ) -> torch.Tensor:
        """Adam step on ``alpha`` for the loss of ``logits_fn`` on ``batch`` (first order);
        returns the (detached, on-device) loss."""
        x, y = batch
        loss = nn.functional.cross_entropy(logits_fn(x), y)
        # Gradients w.r.t. alpha only: the weight gradients of this loss are never used.
        (self.alphas.grad,) = torch.autograd.grad(loss, [self.alphas])
        self.a_optimizer.step()
        return loss.detach()

    def arch_state(self) -> dict[str, Any]:
        grad = self.alphas.grad
        return {
            "alphas": self.alphas.detach().clone(),
            # The gradient left by the last arch step enters the next weight step's clipping
            # norm (DARTS, GDAS), so it is part of the state.
            "alphas_grad": None if grad is None else grad.detach().clone(),
            "a_optimizer": self.a_optimizer.state_dict(),
        }

    def load_arch_state(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.alphas.copy_(state["alphas"])
        grad = state["alphas_grad"]
        self.alphas.grad = None if grad is None else grad.to(self.alphas.device).clone()
        self.a_optimizer.load_state_dict(state["a_optimizer"])

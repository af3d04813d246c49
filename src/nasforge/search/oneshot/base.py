"""What every one-shot (weight-sharing) method shares: its interface and its helpers.

A method owns the supernet of the space it searches -- built by the space's
:class:`~nasforge.search.oneshot.spaces.SupernetAdapter`, which also sizes the
architecture parameters and derives, records and draws the space's archs -- the weight
optimizer (SGD + cosine, as every NB201 search run), and its own architecture state
(alphas, a controller, random generators). The search loop
(:mod:`nasforge.search.oneshot.loop`) drives it:

    setup -> for each epoch: begin_epoch -> train_step x steps -> end_epoch -> derive
          -> finalize

and checkpoints ``state_dict()`` after every epoch. Methods differ only in how an edge
mixes its ops and how the architecture state is updated, so each is one small file,
registered in :data:`~nasforge.search.registry.ONESHOT` and built for a space with
``ONESHOT.create(name, space="darts", **overrides)``.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from nasforge.errors import SearchError
from nasforge.search.oneshot.config import OneShotConfig
from nasforge.search.oneshot.spaces.base import SupernetAdapter, get_adapter
from nasforge.search.registry import ONESHOT_CONFIGS, ONESHOT_SPACES
from nasforge.train.device import prefer_channels_last

Batch = tuple[torch.Tensor, torch.Tensor]


def entropy(probs: np.ndarray) -> np.ndarray:
    """Per-row Shannon entropy (nats) of a row-stochastic matrix."""
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0)
    # Renormalise in float64: float32 softmax rows sum to 1 only up to ~1e-7, which can put
    # the entropy of a near-uniform row above log(num_ops).
    p = p / p.sum(axis=-1, keepdims=True)
    return -(p * np.log(p)).sum(axis=-1)


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
    """Base class of the one-shot methods; subclasses register in
    :data:`~nasforge.search.registry.ONESHOT`.

    Build with ``Method(config=None, space="nb201", **overrides)``: the method's published
    config in ``space`` (:mod:`~nasforge.search.oneshot.settings`) with ``overrides``
    applied (validated). ``space`` is a registered space name or a
    :class:`~nasforge.search.oneshot.spaces.SupernetAdapter`.
    """

    name: ClassVar[str] = ""
    #: The method's own config class: its settings in NB201 and in any space without
    #: published settings of its own (see :meth:`space_config_class`).
    config_class: ClassVar[type[OneShotConfig]] = OneShotConfig
    #: What the method needs of a space beyond the common adapter interface (see
    #: :attr:`SupernetAdapter.provides <nasforge.search.oneshot.spaces.SupernetAdapter.provides>`).
    needs: ClassVar[frozenset[str]] = frozenset()
    #: How the space derives an arch from the method's op weights (see
    #: :meth:`SupernetAdapter.derive <nasforge.search.oneshot.spaces.SupernetAdapter.derive>`).
    derive_rule: ClassVar[str] = "edges"
    #: Whether ``train_step`` consumes a batch of the arch (valid) split every step.
    uses_arch_batches: ClassVar[bool] = True
    #: Whether the supernet's search-mode forward is the derived arch's single path (then
    #: the loop does not evaluate the derived arch a second time).
    eval_is_derived: ClassVar[bool] = False
    #: Weight steps per search epoch, set by the loop before the first epoch (a method
    #: whose schedule moves per iteration reads it).
    steps_per_epoch: int | None = None
    #: The task the loop runs the method on (:mod:`nasforge.tasks`), set by
    #: :func:`~nasforge.search.oneshot.run_search`; None is image classification exactly as
    #: the official code computes it (cross-entropy of the logits, top-1 accuracy). Another
    #: task brings its loss (:meth:`criterion`), its training counts (:meth:`step_stats`)
    #: and its primary metric for scoring paths (:meth:`evaluate_arch`).
    task: Any = None
    #: Methods whose rule reads class labels or a classification recipe (DA-NAS' class
    #: curriculum, FP-NAS' summed log-likelihood, BN-NAS' label smoothing) search
    #: classification only.
    classification_only: ClassVar[bool] = False

    # -- the task ------------------------------------------------------------------------
    def set_task(self, task: Any) -> None:
        """Run on ``task`` (a :class:`~nasforge.tasks.Task`; None or classification: the
        official classification path); a one-line :class:`SearchError` for a method that
        serves classification only."""
        if task is not None and task.name == "classification":
            task = None
        if task is not None:
            self.check_task(task.name)
        self.task = task

    @classmethod
    def check_task(cls, task: str) -> None:
        """A one-line :class:`SearchError` when the method cannot search ``task`` (a
        :attr:`classification_only` method on another task)."""
        if cls.classification_only and task != "classification":
            raise SearchError(
                f"one-shot method {cls.name!r} searches image classification only (its rule "
                f"reads class labels); task {task!r} asked"
            )

    def criterion(self, output: Any, y: Any) -> torch.Tensor:
        """The batch's mean training loss: cross-entropy (classification), else the task's
        :meth:`~nasforge.tasks.Task.loss`."""
        if self.task is None:
            return nn.functional.cross_entropy(output, y)
        return self.task.loss(output, y, None)

    def step_stats(self, loss: torch.Tensor, output: Any, y: Any) -> StepStats:
        """The :data:`StepStats` of a batch (no host sync): classification counts top-1
        hits, another task its :meth:`~nasforge.tasks.Task.train_counts`."""
        if self.task is None:
            return step_stats(loss, output, y)
        n = self.task.batch_size(y)
        with torch.no_grad():
            counts = self.task.train_counts(output, y)
        return loss.detach().double() * n, counts, n

    def batch_score(self, output: Any, y: Any, x: Any = None) -> float:
        """How good ``output`` (the network's output for input ``x``) is on one batch,
        larger better: top-1 accuracy as a fraction (the official candidate / reward score),
        else the task's primary metric (negated where smaller is better)."""
        if self.task is None:
            return top1_correct(output, y) / int(y.shape[0])
        metric = self.task.primary_metric
        value = self.task.evaluate(lambda _: output, [(x, y)])[metric.name]
        return value if metric.higher_is_better else -value

    @classmethod
    def check_space(cls, space: SupernetAdapter) -> None:
        """A one-line :class:`SearchError` unless ``space`` provides what the method
        :attr:`needs` (its settings for the space are :meth:`space_config_class`'s check)."""
        missing = sorted(cls.needs - space.provides)
        if missing:
            raise SearchError(
                f"one-shot method {cls.name!r} needs {missing} of its space, which the "
                f"{space.name!r} supernet adapter does not provide; it searches "
                f"{cls.supported_spaces()}"
            )

    @classmethod
    def supported_spaces(cls) -> list[str]:
        """The registered spaces the method searches: those whose adapter provides what it
        :attr:`needs` and for which it has settings (:meth:`space_config_class`)."""
        out = []
        for name in ONESHOT_SPACES.names():
            space = get_adapter(name)
            key = f"{cls.name}/{name}"
            if cls.needs <= space.provides and (
                key in ONESHOT_CONFIGS or space.config_fields is None
            ):
                out.append(name)
        return out

    @classmethod
    def space_config_class(cls, space: SupernetAdapter) -> type[OneShotConfig]:
        """The config class of the method in ``space``: the one published for the pair
        (``ONESHOT_CONFIGS["<method>/<space>"]``), else, in a space without config fields
        of its own, :attr:`config_class`."""
        key = f"{cls.name}/{space.name}"
        if key in ONESHOT_CONFIGS:
            return ONESHOT_CONFIGS.get(key)  # type: ignore[no-any-return]
        if space.config_fields is None:
            return cls.config_class
        raise SearchError(
            f"one-shot method {cls.name!r} has no settings for the {space.name!r} space; "
            f"it searches {cls.supported_spaces()}"
        )

    def __init__(
        self,
        config: OneShotConfig | None = None,
        *,
        space: str | SupernetAdapter = "nb201",
        **overrides: Any,
    ) -> None:
        self.space = get_adapter(space)
        self.check_space(self.space)
        config_class = self.space_config_class(self.space)
        if config is None:
            config = config_class()
        elif not isinstance(config, config_class):
            raise SearchError(
                f"{self.name} needs a {config_class.__name__}, got {type(config).__name__}"
            )
        self.config = config.replace(**overrides) if overrides else config
        self.supernet: nn.Module | None = None
        self.device = torch.device("cpu")

    @property
    def space_name(self) -> str:
        """The name of the space the method searches."""
        return self.space.name

    def split_rule(self) -> str:
        """How the loop halves a dataset without a ``valid`` split: ``random`` (halves drawn
        from the seed) or ``prefix`` (the first half trains the weights); the space's rule."""
        return self.space.split_rule(self.config)

    def arch_batch_rule(self) -> str:
        """How the loop draws the arch batch of each step: ``cycle`` (epochs of the arch
        split, one permutation each, as xautodl's paired loader) or ``fresh`` (the first
        batch of a new permutation every step); the space's rule."""
        return self.space.arch_batch_rule(self.config)

    # -- construction -----------------------------------------------------------------------
    def partial_k(self) -> int:
        return 1

    def pool_bn(self) -> bool:
        """Whether the mixed op follows its pooling op with a BN(affine=False): the config's
        ``pool_bn`` field where it has one (PC-DARTS, the DARTS space), else no."""
        return bool(getattr(self.config, "pool_bn", False))

    def affine_bn(self) -> bool:
        """Whether the candidate ops' BatchNorms carry a scale and shift (BN-NAS)."""
        return False

    def setup(
        self, num_classes: int | Mapping[str, Any], seed: int, device: str | torch.device = "cpu"
    ) -> None:
        """Build the supernet (weights initialised from ``seed``), optimizers and arch state."""
        self.device = torch.device(device)
        cfg = self.config
        # Module initialisers draw from the global generator: seed it locally and put it
        # back, so the search is a function of ``seed`` alone and leaves no trace.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.supernet = self.build_supernet(num_classes).to(self.device)
            # oneDNN's fastest safe layout (nasforge.train.device): channels_last for both
            # spaces, narrow BatchNorms in NCHW (benchmarks/oneshot_levers.py).
            self.layout = prefer_channels_last(self.supernet, self.device)
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

    def build_supernet(self, num_classes: int | Mapping[str, Any]) -> nn.Module:
        """The supernet of the method's space (built by its adapter): for ``num_classes``
        classes, or for a task's data (``num_classes`` is then the task's
        :meth:`~nasforge.tasks.Task.network_io`)."""
        options = {"partial_k": self.partial_k(), "pool_bn": self.pool_bn()}
        if isinstance(num_classes, Mapping):
            return self.space.build_task_supernet(
                self.config, num_classes, affine=self.affine_bn(), **options
            )
        return self.space.build_supernet(
            self.config, num_classes, affine=self.affine_bn(), **options
        )

    @abstractmethod
    def setup_arch(self) -> None:
        """Create the architecture state (parameters, optimizer, controller)."""

    def new_alphas(self) -> nn.Parameter:
        """Architecture logits of the space's shape (rows x ops), initialised as in xautodl:
        ``1e-3 * randn(rows, ops)``."""
        init = 1e-3 * torch.randn(*self.space.shape, generator=self.generator)
        return nn.Parameter(init.to(self.device))

    def arch_adam(self, params: list[nn.Parameter]) -> torch.optim.Adam:
        cfg = self.config
        return torch.optim.Adam(
            params, lr=cfg.arch_lr, betas=cfg.arch_betas, weight_decay=cfg.arch_weight_decay
        )

    def uniform_path(self) -> list[int]:
        """One uniformly random op id per row, from the method's generator ``rng``."""
        rows, ops = self.space.shape
        return self.rng.integers(0, ops, size=rows).tolist()  # type: ignore[no-any-return]

    # -- per step / epoch -----------------------------------------------------------------------
    def epoch_lr(self, epoch: int) -> float:
        """The weight learning rate of (0-based) ``epoch`` (the space's schedule, default
        :func:`~nasforge.search.oneshot.config.cosine_lr`)."""
        return self.space.epoch_lr(self.config, epoch)

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
        loss = self.criterion(logits, y)
        loss.backward()
        if self.config.grad_clip > 0:
            params = [*self.supernet.parameters(), *clip_also]
            nn.utils.clip_grad_norm_(params, self.config.grad_clip)
        self.w_optimizer.step()
        return self.step_stats(loss, logits, y)

    # -- architecture views ---------------------------------------------------------------------
    @abstractmethod
    def probabilities(self) -> np.ndarray:
        """The current per-row op distribution, shape (rows, ops), rows summing to 1."""

    def derive_edge_weights(self) -> np.ndarray | None:
        """The per-row factors the derivation multiplies in (PC-DARTS' normalised betas)."""
        return None

    def derive(self, ctx: SearchContext) -> Any:
        """The arch the method would return now; default: the space's derivation
        (:attr:`derive_rule`) of the distribution."""
        return self.space.derive(
            self.probabilities(), self.derive_edge_weights(), rule=self.derive_rule
        )

    def finalize(self, ctx: SearchContext) -> Any:
        """The arch returned at the end of the search (default: :meth:`derive`)."""
        return self.derive(ctx)

    def arch_fields(self, arch: Any) -> dict[str, Any]:
        """What records and results say of a derived arch (the space's
        :meth:`~nasforge.search.oneshot.spaces.SupernetAdapter.arch_fields`)."""
        return self.space.arch_fields(arch)

    def write_arch(self, arch: Any, out_dir: Any) -> dict[str, str]:
        """Write the final arch in the space's own file formats into ``out_dir``; returns
        {kind: path}."""
        return self.space.write_arch(arch, out_dir)

    def plot(
        self,
        records: list[dict[str, Any]],
        path: Any,
        title: str = "",
        *,
        warmup: int = 0,
        trained: dict[str, float] | None = None,
    ) -> Any:
        """Draw the per-epoch ``records`` to ``path`` (the space's figure)."""
        return self.space.plot(records, path, title=title, warmup=warmup, trained=trained)

    @torch.no_grad()
    def eval_logits(self, x: torch.Tensor, derived: Any) -> torch.Tensor:
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

    def evaluate_arch(self, arch: Any, batches: list[Batch]) -> float:
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
        if self.task is not None:  # the task's primary metric over the batches
            net = self.supernet
            with mode, torch.no_grad():
                res = self.task.evaluate(lambda x: net.forward_arch(x, arch), batches)
            return float(res[self.task.primary])
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
        loss = self.criterion(logits_fn(x), y)
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

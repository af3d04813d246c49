"""What a one-shot method needs of a search space: :class:`SupernetAdapter`.

A space that one-shot methods can search registers one adapter under its space name in
:data:`nasforge.search.registry.ONESHOT_SPACES` (``@ONESHOT_SPACES.register("nb201")``).
The adapter builds the space's supernet, says how many architecture parameters it has
(``rows`` x ``len(ops)``: one row per edge, one column per candidate op), derives an arch
of the space from per-row op weights, and knows how the space's arch is recorded
(:meth:`arch_fields`), written (:meth:`write_arch`) and drawn (:meth:`plot`). The methods
(:mod:`nasforge.search.oneshot`) speak only to this interface, so one method file serves
every space whose adapter offers what the method needs (:attr:`provides`).

A *path* is one op id per row. Where a path is itself an arch of the space (NB201: one op
per edge) the adapter provides ``"path-archs"``, which the methods that return sampled
paths (RSPS, ENAS, SETN, ...) need; in the DARTS space a path is not a genotype (each node
keeps two of its inputs), so only methods that derive from weights run there.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from nasforge.errors import SearchError
from nasforge.search.oneshot.config import OneShotConfig, cosine_lr
from nasforge.search.registry import ONESHOT_SPACES

#: What an adapter may offer beyond the common interface (see :attr:`SupernetAdapter.provides`).
CAPABILITIES = ("path-archs", "top-k", "node-rows", "cell-ops", "arch-flops")


class SupernetAdapter(ABC):
    """One search space as the one-shot methods see it (see the module docstring)."""

    #: The space's registered name (``nb201``, ``darts``).
    name: ClassVar[str] = ""
    #: Rows of the architecture parameters (edges; DARTS: 14 normal + 14 reduction).
    rows: ClassVar[int] = 0
    #: The candidate op names, in column order.
    ops: ClassVar[tuple[str, ...]] = ()
    #: Optional parts of the interface the adapter implements: ``path-archs`` (a path is an
    #: arch: :meth:`path_arch` returns one and :meth:`arch_path` reads one), ``top-k``
    #: (:meth:`top_k`), ``node-rows`` (:meth:`node_rows`), ``cell-ops`` (:meth:`cell_ops`),
    #: ``arch-flops`` (:meth:`arch_flops`).
    provides: ClassVar[frozenset[str]] = frozenset()
    #: A frozen dataclass mixin of config fields every method config in this space carries
    #: (None: none). A method runs in such a space only with a config class that includes it
    #: (registered in :data:`~nasforge.search.registry.ONESHOT_CONFIGS`).
    config_fields: ClassVar[type | None] = None
    #: Groups of op ids of which DDPNAS' pruning always keeps one survivor (empty: one group).
    prune_groups: ClassVar[tuple[tuple[int, ...], ...]] = ()
    #: DDPNAS' big-model sampling rule (parameter-free op ids, the id of ``none``, the
    #: leading rows it counts them in), or None where the space defines none.
    bigmodel_rule: ClassVar[tuple[tuple[int, ...], int, int] | None] = None

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, ops) of the architecture parameters."""
        return self.rows, len(self.ops)

    # -- the supernet and its schedule -----------------------------------------------------
    @abstractmethod
    def build_supernet(
        self,
        config: OneShotConfig,
        num_classes: int,
        *,
        partial_k: int = 1,
        pool_bn: bool = False,
        affine: bool = False,
    ) -> nn.Module:
        """The space's supernet for ``config`` (its ``C`` / ``N`` at least). Its forward
        takes ``weights`` (rows x ops mixing weights), ``index`` (a path), ``edge_weights``
        (one factor per row); ``forward_arch(x, arch)`` runs one derived arch or path and
        ``path_parameters(path)`` lists the weights a path uses."""

    def build_task_supernet(
        self,
        config: OneShotConfig,
        io: Mapping[str, Any],
        *,
        partial_k: int = 1,
        pool_bn: bool = False,
        affine: bool = False,
    ) -> nn.Module:
        """The supernet for a task's data (``io``: :meth:`~nasforge.tasks.Task.network_io`).
        Default: a classifier (:meth:`build_supernet`) when the task asks for
        ``num_classes`` only; an adapter whose supernet serves other tasks overrides this."""
        if set(io) == {"num_classes"}:
            return self.build_supernet(
                config, int(io["num_classes"]), partial_k=partial_k, pool_bn=pool_bn, affine=affine
            )
        raise SearchError(
            f"the {self.name!r} supernet is a classifier; the task's networks take "
            f"{sorted(io)} (a space whose supernet adapter builds for them can be searched)"
        )

    def epoch_lr(self, config: OneShotConfig, epoch: int) -> float:
        """The weight learning rate of (0-based) ``epoch`` (default: :func:`cosine_lr`)."""
        return cosine_lr(config, epoch)

    def split_rule(self, config: OneShotConfig) -> str:
        """How the loop halves a dataset without a ``valid`` split (default ``random``)."""
        return "random"

    def arch_batch_rule(self, config: OneShotConfig) -> str:
        """How the loop draws each step's arch batch (default ``cycle``)."""
        return "cycle"

    # -- derivation ----------------------------------------------------------------------
    @abstractmethod
    def derive(
        self,
        weights: np.ndarray,
        edge_weights: np.ndarray | None = None,
        *,
        rule: str = "edges",
        tie_break: np.ndarray | None = None,
    ) -> Any:
        """The arch of the space the per-row op ``weights`` (rows x ops) select, each row's
        weights scaled by ``edge_weights`` (PC-DARTS) when given. ``rule`` names how a
        node chooses among its inputs where the space chooses (``edges``: DARTS'
        ``genotype()``; ``pairs``: GDAS' NASNet-space rule); ``tie_break`` (rows x ops)
        orders ops of equal weight where the space keeps every edge."""

    def path_arch(self, path: Sequence[int]) -> Any:
        """What ``forward_arch`` / ``evaluate_arch`` take for the single path ``path``
        (with ``path-archs``: the arch; default: the op ids)."""
        return [int(k) for k in path]

    def arch_path(self, arch: Any) -> list[int]:
        """The single path (op id per row) of a derived arch."""
        raise SearchError(f"the {self.name} one-shot space maps no arch to a single path")

    def describe_path(self, path: Sequence[int]) -> str:
        """The single path ``path`` as records name it (default: the op names)."""
        return " ".join(self.ops[int(k)] for k in path)

    def top_k(self, log_probs: np.ndarray, k: int) -> list[Any]:
        """``top-k``: the ``k`` archs of highest log-probability under independent per-row
        distributions ``log_probs`` (rows x ops)."""
        raise SearchError(f"the {self.name} one-shot space cannot rank all its archs")

    def normalise_edges(self, betas: torch.Tensor) -> torch.Tensor:
        """PC-DARTS' edge normalisation: per node, the softmax of its input rows' betas."""
        raise SearchError(f"the {self.name} one-shot space defines no edge normalisation")

    def node_rows(self) -> tuple[tuple[int, ...], ...]:
        """``node-rows``: per intermediate node, the rows of its incoming edges."""
        raise SearchError(f"the {self.name} one-shot space does not group its rows by node")

    def cell_ops(self, supernet: nn.Module) -> list[list[Sequence[nn.Module]]]:
        """``cell-ops``: per searched cell, per row, the candidate op modules."""
        raise SearchError(f"the {self.name} one-shot space does not list its cells' ops")

    def arch_flops(self, arch: Any, dataset: str, config: OneShotConfig) -> float:
        """``arch-flops``: MFLOPs of ``arch``'s network at ``config``'s size on ``dataset``."""
        raise SearchError(f"the {self.name} one-shot space has no FLOPs count")

    # -- records ---------------------------------------------------------------------------
    @abstractmethod
    def arch_fields(self, arch: Any) -> dict[str, Any]:
        """What records and results say of a derived arch: ``arch`` (its string),
        ``arch_index`` (None where the space has no index) and ``skip_share`` (the
        collapse indicator)."""

    def write_arch(self, arch: Any, out_dir: Path) -> dict[str, str]:
        """Write the final arch in the space's own file formats into ``out_dir``; returns
        {kind: path} (default none: the arch string is in the records)."""
        return {}

    @abstractmethod
    def plot(
        self,
        records: list[dict[str, Any]],
        path: Any,
        title: str = "",
        *,
        warmup: int = 0,
        trained: dict[str, float] | None = None,
    ) -> Any:
        """Draw the per-epoch ``records`` of a search in this space to ``path``."""


def get_adapter(space: str | SupernetAdapter) -> SupernetAdapter:
    """The adapter registered under ``space`` (an adapter is returned as it is); an
    unknown name is a one-line :class:`SearchError` listing the registered ones."""
    if isinstance(space, SupernetAdapter):
        return space
    if space not in ONESHOT_SPACES:
        raise SearchError(
            f"no one-shot supernet for space {space!r}; expected one of {ONESHOT_SPACES.names()}"
        )
    return ONESHOT_SPACES.create(space)

"""Training one architecture of any registered space: what ``nasforge train`` runs.

:func:`arch_training` gives the :class:`ArchTraining` of a space. By default that is
:class:`NetworkTraining`: the network comes from the space's builder in
:data:`nasforge.nn.NETWORKS` (``build_network(space, arch, io=task.network_io(data),
**options)``), ``channels`` / ``cells`` set its ``C`` / ``N`` and ``options`` any other
builder option. A space whose networks need more than the builder's keywords (DARTS: the
ImageNet or CIFAR network by input size, the auxiliary head by the recipe; NB201: the
benchmark's own training record) registers its own in :data:`ARCH_TRAINING` under the
space's name -- one class and one registration line in the space's training module, plus
the module in ``_ARCH_TRAINING_MODULES`` -- and the command line stays the same for every
space.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nasforge.errors import ArchError, NetworkError
from nasforge.registry import Registry
from nasforge.train.recipe import Recipe
from nasforge.train.trainer import TrainResult, fit_fresh

__all__ = [
    "ARCH_TRAINING",
    "ArchTraining",
    "NetworkOptionError",
    "NetworkTraining",
    "arch_training",
]


class NetworkOptionError(NetworkError):
    """A network setting refused by :meth:`ArchTraining.check`, naming the option it came
    from (``option``: ``"--cells"``) beside what is wrong (``detail``), so a command line
    can report it as a usage error of that option."""

    def __init__(self, option: str, value: Any, detail: str) -> None:
        super().__init__(f"{option} {value!r}: {detail}")
        self.option, self.value, self.detail = option, value, detail


class ArchTraining:
    """How the archs of one space are trained: :meth:`check` refuses bad network settings
    before any data is loaded, :meth:`fit` builds the network (seeded) and trains it."""

    def __init__(self, space: str) -> None:
        self.space = space

    def check(
        self,
        task: Any,
        channels: int | None,
        cells: int | None,
        options: Mapping[str, Any],
    ) -> None:
        """Refuse network settings this space cannot build (:class:`ArchError` or a
        :class:`~nasforge.errors.NetworkError` naming the value), before any data."""

    def fit(
        self,
        arch: Any,
        data: Any,
        recipe: Recipe,
        *,
        task: Any,
        channels: int | None,
        cells: int | None,
        options: Mapping[str, Any],
        seed: int,
        **fit_kwargs: Any,
    ) -> TrainResult:
        """Train ``arch`` on ``data`` with ``recipe`` (``fit_kwargs``: device, quiet,
        checkpoint_dir, resume, identity, as :func:`~nasforge.train.fit_fresh` takes)."""
        raise NotImplementedError


class NetworkTraining(ArchTraining):
    """The default: the space's network builder, ``channels`` / ``cells`` as its ``C`` /
    ``N``, ``options`` as its other keywords (recorded in the result's ``meta``)."""

    def _options(self, channels: int | None, cells: int | None, options: Mapping[str, Any]):
        opts = dict(options)
        if channels is not None:
            opts.setdefault("C", channels)
        if cells is not None:
            opts.setdefault("N", cells)
        return opts

    def check(
        self,
        task: Any,
        channels: int | None,
        cells: int | None,
        options: Mapping[str, Any],
    ) -> None:
        from nasforge.nn import network_options

        accepted = network_options(self.space)  # fails early for a space without a network
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise ArchError(
                f"--network {', '.join(unknown)}: the {self.space} network has no such option; "
                f"expected some of {sorted(accepted)}"
            )

    def fit(
        self,
        arch: Any,
        data: Any,
        recipe: Recipe,
        *,
        task: Any,
        channels: int | None,
        cells: int | None,
        options: Mapping[str, Any],
        seed: int,
        **fit_kwargs: Any,
    ) -> TrainResult:
        if task.name == "classification":
            own = self.fit_classification(
                arch, data, recipe, channels=channels, cells=cells, seed=seed, **fit_kwargs
            )
            if own is not None:
                return own
        from nasforge.nn import build_network

        opts = self._options(channels, cells, options)
        io = task.network_io(data)
        # fit_fresh builds the network before any training: a bad option fails there.
        result, _ = fit_fresh(
            lambda: build_network(self.space, arch, io=io, **opts),
            data,
            recipe,
            task=task,
            seed=seed,
            **fit_kwargs,
        )
        result.meta.update(opts)
        return result

    def fit_classification(
        self,
        arch: Any,
        data: Any,
        recipe: Recipe,
        *,
        channels: int | None,
        cells: int | None,
        seed: int,
        **fit_kwargs: Any,
    ) -> TrainResult | None:
        """A space's own image-classification training (its benchmark's network and
        recipe), or None: the space's network builder, as for any other task."""
        return None


#: Trainings of spaces that need more than their network builder, by space name.
ARCH_TRAINING: Registry[ArchTraining] = Registry("arch training (by search space)")


#: Modules registering in :data:`ARCH_TRAINING` (imported on first use: they import this one).
_ARCH_TRAINING_MODULES = ["nasforge.train.nb201", "nasforge.train.darts"]


def arch_training(space: str) -> ArchTraining:
    """The training of ``space``'s archs: its registered one, else :class:`NetworkTraining`."""
    import importlib

    for name in _ARCH_TRAINING_MODULES:
        importlib.import_module(name)
    if space in ARCH_TRAINING:
        return ARCH_TRAINING.create(space, space)
    return NetworkTraining(space)

"""The NATS-Bench flavours (``nats_bench.create(path, "tss" | "sss")``) and their default
tables under ``$TORCH_HOME``."""

from __future__ import annotations

import os
import random
from typing import Any

from nasforge.bench.compat.api import NASBench201API
from nasforge.bench.compat.common import NATS_SSS_BASE_NAME, NATS_TSS_BASE_NAME
from nasforge.bench.compat.results import ArchResults
from nasforge.bench.query import Benchmark
from nasforge.errors import BenchError


class NATStopologyAPI(NASBench201API):
    """The NATS-Bench topology API flavour (``nats_bench.create(path, 'tss')``): averages
    with ``sum / len``, ``find_best(..., flop_max, param_max, hp, enforce_all)``, and the
    ``comment`` key it adds for CIFAR-10. ``path=None`` opens
    ``$TORCH_HOME/NATS-tss-v1_0-3ffb9.table``."""

    _comment = True
    _arch_results_cls = ArchResults
    _info_sep = " &"
    _default_base = NATS_TSS_BASE_NAME

    def __init__(
        self,
        path: str | os.PathLike[str] | Benchmark | None = None,
        fast_mode: bool = False,
        verbose: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(path, verbose=verbose, rng=rng)
        self._fast_mode = fast_mode

    search_space_name = "topology"
    is_topology = True
    is_size = False
    full_epochs_in_paper = 200

    @property
    def fast_mode(self) -> bool:
        """Kept for the official signature: a table is always 'fast' (memory-mapped)."""
        return self._fast_mode

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({len(self._bench)}/{self._size} architectures, "
            f"fast_mode={self._fast_mode}, file={self.filename})"
        )

    def find_best(  # type: ignore[override]
        self,
        dataset: str,
        metric_on_set: str,
        flop_max: float | None = None,
        param_max: float | None = None,
        hp: str = "12",
        enforce_all: bool | None = None,
    ) -> tuple[int, Any]:
        """(index, accuracy) of the best arch; ``enforce_all`` is moot (every arch of the
        table is always considered)."""
        return self._find_best(
            dataset, metric_on_set, flop_max, param_max, hp, ("flop_max", "param_max")
        )


class NATSsizeAPI(NATStopologyAPI):
    """The NATS-Bench size API (``nats_bench.create(path, 'sss')``, official class
    ``NATSsize`` in nats_bench/api_size.py) on a table of the ``nats-sss`` space: the same
    query surface as topology over the 32,768 channel configurations (arch strings like
    ``"64:32:16:48:8"``, recipes ``"01"``, ``"12"``, ``"90"``), ``infer.shape.tiny``
    network configs, and cifar10-valid's summary line with its test result.
    ``path=None`` opens ``$TORCH_HOME/NATS-sss-v1_0-50262.table``."""

    _default_base = NATS_SSS_BASE_NAME
    _valid_test = True
    _table_space = "nats-sss"

    search_space_name = "size"
    is_topology = False
    is_size = True
    full_epochs_in_paper = 90


#: ``create``'s search-space names (nats_bench/__init__.py ``create``) -> facade class.
_NATS_APIS: dict[str, type[NATStopologyAPI]] = {
    "tss": NATStopologyAPI,
    "topology": NATStopologyAPI,
    "sss": NATSsizeAPI,
    "size": NATSsizeAPI,
}


def create(
    file_path_or_dict: str | os.PathLike[str] | Benchmark | None,
    search_space: str,
    fast_mode: bool = False,
    verbose: bool = True,
    **kwargs: Any,
) -> NATStopologyAPI:
    """``nats_bench.create`` look-alike: ``'tss'`` / ``'topology'`` gives a
    :class:`NATStopologyAPI`, ``'sss'`` / ``'size'`` a :class:`NATSsizeAPI`. ``None``
    resolves ``$TORCH_HOME`` (else ``$HOME/.torch``) as nats_bench does, to the table named
    after the official file (``NATS-tss-v1_0-3ffb9.table``, ``NATS-sss-v1_0-50262.table``)."""
    cls = _NATS_APIS.get(search_space)
    if cls is None:
        raise BenchError(f"invalid search space : {search_space}; expected 'tss' or 'sss'")
    return cls(file_path_or_dict, fast_mode=fast_mode, verbose=verbose, **kwargs)

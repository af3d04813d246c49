"""A drop-in facade with the official NAS-Bench-201 / NATS-Bench (topology) API, served
from our table.

    from nasforge.bench.compat import NASBench201API as API      # nas_201_api flavour
    api = API("nb201.table")           # opens in milliseconds instead of minutes
    info = api.query_meta_info_by_index(index, hp="200")           # an ArchResults
    info.get_metrics("cifar10-valid", "x-valid")["accuracy"]
    for seed, rc in api.query_by_index(index, "cifar100", hp="200").items():
        rc.eval_acc1es["x-test@199"], rc.get_train(10)

    from nasforge.bench import compat
    api = compat.create(None, "tss", fast_mode=True)               # nats_bench flavour

Keys, value conventions and return types follow ``nas_201_api`` (v2.0) and ``nats_bench``
(v1.8):

* datasets ``cifar10-valid`` (sets ``x-valid``, ``ori-test``), ``cifar10`` (``ori-test``),
  ``cifar100`` / ``ImageNet16-120`` (``x-valid``, ``x-test``, and ``ori-test`` reported as
  ``valtest-*``);
* ``iepoch`` is 0-based (``None`` = last epoch); ``*-all-time`` is the time summed over
  epochs ``0..iepoch`` and ``*-per-time`` that sum divided by ``iepoch + 1``;
* ``is_random=True`` picks one of the arch's seeds at random, ``False`` averages over its
  seeds, an int selects that seed;
* averages are ``numpy.mean`` (``numpy.float64``) in the ``nas_201_api`` flavour and
  ``sum / len`` (``float``) in the ``nats_bench`` one, as in the two official packages;
* ``get_cost_info`` gives ``flops`` / ``params`` (millions), ``latency`` (seconds, ``None``
  if unknown) and ``T-<set>@epoch`` / ``T-<set>@total`` times.

Where the facade differs on purpose:

* ``reload`` / ``clear_params`` are no-ops: the table is memory-mapped, so nothing is held
  per arch (no 25 GB dict to load arch by arch, no weights to free);
* a table holds metrics, not trained weights: ``get_net_param`` raises a clear
  :class:`BenchError` instead of returning ``None``;
* ``verbose`` is accepted and ignored (the official call logs are not reproduced);
* an official file path (or ``None`` = the default under ``$TORCH_HOME``) opens the table
  imported next to it, ``<official name>.table`` (:func:`sibling_table`): import once with
  ``nasforge bench import``, then scripts naming the official file run unchanged;
* errors are :class:`BenchError` (a ``ValueError``, as most official errors are; a missing
  key is also a ``KeyError``).

The random draws use the ``random`` module like the official API, unless a
``random.Random`` is passed as ``rng`` (reproducible runs).

The facade is a package, one module per concern: :mod:`.common` (official names and
conventions), :mod:`.results` (the result classes), :mod:`.api` (``NASBench201API``),
:mod:`.nats` (the NATS-Bench flavours and ``create``).
"""

from nasforge.bench.compat.api import NASBench201API, sibling_table
from nasforge.bench.compat.common import CompatKeyError, get_torch_home, remap_dataset_set_names
from nasforge.bench.compat.nats import NATSsizeAPI, NATStopologyAPI, create
from nasforge.bench.compat.results import (
    ArchResults,
    NB201ArchResults,
    NB201ResultsCount,
    ResultsCount,
    print_information,
)

__all__ = [
    "ArchResults",
    "CompatKeyError",
    "NASBench201API",
    "NATSsizeAPI",
    "NATStopologyAPI",
    "NB201ArchResults",
    "NB201ResultsCount",
    "ResultsCount",
    "create",
    "get_torch_home",
    "print_information",
    "remap_dataset_set_names",
    "sibling_table",
]

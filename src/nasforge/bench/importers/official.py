"""Importers of the official NAS-Bench-201 (``.pth``) and NATS-Bench (topology and size)
files.

Formats (read from the official ``nas_201_api`` / ``nats_bench`` sources):

* NAS-Bench-201 v1.0 / v1.1 ``NAS-Bench-201-v1_*.pth``: ``torch.save`` of
  ``{"meta_archs": [15625 arch strings], "arch2infos": {index: {"less": ArchResults state,
  "full": ArchResults state}}, "evaluated_indexes": [...]}``; ``less`` is the 12-epoch
  recipe (hp ``"12"``), ``full`` the 200-epoch one (hp ``"200"``). The archive directory
  ``NAS-Bench-201-v1_1-archive`` holds one ``NNNNNN-FULL.pth`` per arch with
  ``{"less": ..., "full": ...}``.
* NATS-Bench topology: ``NATS-tss-v1_0-3ffb9-simple`` / ``-full`` directories with
  ``meta.pickle.pbz2`` (``{"meta_archs": ...}``) and one bz2 pickle ``NNNNNN.pickle.pbz2`` per
  arch holding ``{hp: ArchResults state}`` (hp ``"01"``, ``"12"``, ``"90"``, ``"200"``); or
  the single file ``NATS-tss-v1_0-3ffb9.pickle.pbz2`` shaped like the NB201 dict.
* NATS-Bench size: the same layout (``NATS-sss-v1_0-50262-simple`` / ``-full`` directories,
  the single ``NATS-sss-v1_0-50262.pickle.pbz2``) over the 32,768 channel configurations
  (``meta_archs`` like ``"64:32:16:48:8"``), recipes ``"01"``, ``"12"``, ``"90"``
  (AutoDL-Projects ``exps/NATS-Bench/sss-collect.py``, ``simplify``: ``hps = ["01", "12",
  "90"]``). Its table holds the ``nats-sss`` space.

An ``ArchResults`` state maps ``(dataset, seed)`` to a ``ResultsCount`` state whose
``train_losses`` / ``train_acc1es`` / ``train_times`` are keyed by 0-based epoch and whose
``eval_*`` dicts are keyed ``"<set>@<epoch>"``. Every file is read through the restricted
parser of :mod:`nasforge.bench.safe_pickle` (restricted unpickler, our own reading of the
torch zip / legacy containers; never ``torch.load``). The official index is kept: the file's
``meta_archs`` must list the archs in the official order. A malformed file of any kind is a
one-line :class:`BenchError` naming it.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.bench.query import OFFICIAL_LATENCY_BATCH
from nasforge.bench.safe_pickle import as_state, load_bz2_pickle, load_torch_file, oneline
from nasforge.bench.schema import (
    STATUS_CODES,
    TRAIN_TIME,
    check_curve,
    check_seed,
    metric_order,
)
from nasforge.bench.spaces import TableSpace, table_space
from nasforge.bench.store import CostData, GroupData, write_table
from nasforge.errors import BenchError

#: NB201 file keys -> recipe keys the official API uses for them (api_201.py).
NB201_HP_KEYS = {"less": "12", "full": "200"}
_NATS_EXT = ".pickle.pbz2"


def _f(v: Any) -> float:
    """A float, NaN for missing (None, absent); one-element tensors and arrays give their
    value."""
    if v is None:
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError, OverflowError):
        found = repr(v[:80]) if isinstance(v, (str, bytes)) else type(v).__name__
        raise BenchError(f"expected a number in the official file, found {found}") from None


def _series(values: Any, epochs: int) -> np.ndarray:
    """Per-epoch values from an official dict keyed by epoch (or a list)."""
    out = np.full(epochs, np.nan)
    if values is None:
        return out
    if isinstance(values, dict):
        for k, v in values.items():
            i = int(k)
            if 0 <= i < epochs:
                out[i] = _f(v)
    else:
        for i, v in enumerate(list(values)[:epochs]):
            out[i] = _f(v)
    return out


def eval_set_metric(dataset: str, set_name: str, eval_names: set[str]) -> str | None:
    """Our metric prefix for an official evaluation set of ``dataset``.

    ``x-valid`` -> valid, ``x-test`` -> test; ``ori-test`` (the original test set) is the
    test set where the dataset has no ``x-test`` (cifar10, cifar10-valid), and the union of
    x-valid and x-test, ``valtest``, where it has (cifar100, ImageNet16-120).
    """
    if set_name == "x-valid":
        return "valid"
    if set_name == "x-test":
        return "test"
    if set_name == "ori-test":
        has_xtest = "x-test" in eval_names or dataset in ("cifar100", "ImageNet16-120")
        return "valtest" if has_xtest else "test"
    return None


def results_count_curves(dataset: str, rc: dict[str, Any]) -> tuple[int, dict[str, np.ndarray]]:
    """(epochs, metric -> per-epoch values) of one ``ResultsCount`` state."""
    rc = as_state(rc)
    try:
        epochs = int(rc["epochs"])
    except (KeyError, TypeError, ValueError, OverflowError):
        raise BenchError(f"a {dataset} result has no valid 'epochs' field") from None
    if not 0 < epochs <= MAX_EPOCHS:
        raise BenchError(f"a {dataset} result claims {epochs} epochs; expected 1..{MAX_EPOCHS}")
    curves = {
        "train_loss": _series(rc.get("train_losses"), epochs),
        "train_acc": _series(rc.get("train_acc1es"), epochs),
    }
    times = rc.get("train_times")
    if isinstance(times, dict) and times:
        curves["epoch_time"] = _series(times, epochs)
    names = set(rc.get("eval_names") or [])
    accs, losses = rc.get("eval_acc1es") or {}, rc.get("eval_losses") or {}
    etimes = rc.get("eval_times") or {}
    for set_name in names:
        prefix = eval_set_metric(dataset, set_name, names)
        if prefix is None:
            continue
        acc, loss, tm = (np.full(epochs, np.nan) for _ in range(3))
        for i in range(epochs):
            key = f"{set_name}@{i}"
            acc[i] = _f(accs.get(key))
            loss[i] = _f(losses.get(key))
            tm[i] = _f(etimes.get(key)) if isinstance(etimes, dict) else math.nan
        curves[f"{prefix}_acc"], curves[f"{prefix}_loss"] = acc, loss
        if not np.isnan(tm).all():
            curves[f"{prefix}_time"] = tm
    return epochs, curves


def _legacy_fix(values: list[float], seeds: list[int]) -> float:
    """Mean over seeds, except where seeds disagree: then seed 888's value (nats_bench v1.6
    'fix the inconsistent flop/params', api_utils.get_compute_costs)."""
    if len(values) > 1 and len({f"{x:.5f}" for x in values}) > 1 and 888 in seeds:
        return values[seeds.index(888)]
    return sum(values) / len(values)


class _GroupSpill:
    """The entries of one (dataset, hp) group, spilled to a file as they are read.

    Each entry's curves go to disk at once (one ``.npy`` record of ``[metrics, epochs]``);
    memory keeps only where each record lies, so an import holds one arch at a time whatever
    the size of the source. Read back row by row (:meth:`blocks`) into the table's columns.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = open(path, "w+b")  # noqa: SIM115 - closed by close()
        # (index, seed) -> (offset, epochs, metric names); a later entry replaces an earlier
        self.where: dict[tuple[int, int], tuple[int, int, tuple[str, ...]]] = {}
        self.names: set[str] = set()
        self.epochs = 0

    def put(self, index: int, seed: int, epochs: int, curves: dict[str, np.ndarray]) -> None:
        names = tuple(curves)
        offset = self.file.seek(0, os.SEEK_END)
        np.save(self.file, np.stack([curves[n] for n in names]), allow_pickle=False)
        self.where[(index, seed)] = (offset, epochs, names)
        self.names.update(names)
        self.epochs = max(self.epochs, epochs)

    def blocks(
        self, rows: np.ndarray, seeds: list[int], metrics: list[str]
    ) -> Iterator[np.ndarray]:
        """``[seeds, metrics, epochs]`` of each row in turn (NaN where nothing was read)."""
        m_pos = {m: k for k, m in enumerate(metrics)}
        s_pos = {sd: k for k, sd in enumerate(seeds)}  # not seeds.index: linear in seeds
        by_row: dict[int, list[tuple[int, int, int, tuple[str, ...]]]] = {}
        for (index, seed), (offset, e, names) in self.where.items():
            by_row.setdefault(index, []).append((s_pos[seed], offset, e, names))
        for index in rows.tolist():
            block = np.full((len(seeds), len(metrics), self.epochs), np.nan)
            for s, offset, e, names in sorted(by_row[index], key=lambda x: x[1]):
                self.file.seek(offset)
                values = np.load(self.file, allow_pickle=False)
                for k, n in enumerate(names):
                    block[s, m_pos[n], :e] = values[k]
                if "epoch_time" in names:
                    block[s, m_pos[TRAIN_TIME], :e] = np.cumsum(values[names.index("epoch_time")])
            yield block

    def close(self) -> None:
        self.file.close()
        with contextlib.suppress(OSError):
            self.path.unlink()


class _StreamedRows:
    """A group's ``[rows, seeds, metrics, epochs]`` column as the store writes it: shape,
    dtype and its rows in order (:meth:`iter_blocks`), never all in memory at once."""

    def __init__(self, shape: tuple[int, ...], blocks: Callable[[], Iterator[np.ndarray]]) -> None:
        self.shape = shape
        self.dtype = np.dtype(np.float64)
        self._blocks = blocks

    def iter_blocks(self) -> Iterator[np.ndarray]:
        return self._blocks()


class _Collector:
    """Gathers entries arch by arch (their curves spilled to ``spill_dir`` at once) and
    turns them into groups whose columns are written row by row."""

    def __init__(self, space: str = "nb201", spill_dir: Path | None = None) -> None:
        self.space: TableSpace = table_space(space)
        self._spill_dir = spill_dir
        self._own_dir: str | None = None
        # (dataset, hp) -> its spilled entries
        self.entries: dict[tuple[str, str], _GroupSpill] = {}
        self.costs: dict[str, dict[int, dict[str, float]]] = {}
        self.cost_hp: dict[tuple[str, int], str] = {}

    def _group(self, dataset: str, hp: str) -> _GroupSpill:
        g = self.entries.get((dataset, hp))
        if g is None:
            if self._spill_dir is None:
                self._own_dir = tempfile.mkdtemp(prefix="nasforge-import-")
                self._spill_dir = Path(self._own_dir)
            g = _GroupSpill(self._spill_dir / f"g{len(self.entries):04d}.spill")
            self.entries[(dataset, hp)] = g
        return g

    def close(self) -> None:
        """Remove the spill files (every import ends with it, failed or not)."""
        for g in self.entries.values():
            g.close()
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)
            self._own_dir = None

    def __del__(self) -> None:  # a collector dropped without close() leaves no file behind
        with contextlib.suppress(Exception):
            self.close()

    def add_arch(self, index: int, hp2state: Any, source: str) -> None:
        """Add one arch's ``{hp: ArchResults state}``; a malformed one is a BenchError."""
        size = self.space.size
        if not 0 <= index < size:
            raise BenchError(f"{source}: arch index {index} is outside 0..{size - 1}")
        if not isinstance(hp2state, dict):
            raise BenchError(f"{source}: arch {index}: expected a dict of hp -> ArchResults state")
        try:
            self._add_arch(index, {str(k): v for k, v in hp2state.items()})
        except BenchError as exc:
            raise BenchError(f"{source}: arch {index}: {oneline(exc)}") from None
        except _MALFORMED as exc:
            raise BenchError(
                f"{source}: arch {index}: malformed result ({type(exc).__name__}: {oneline(exc)})"
            ) from None

    def _add_arch(self, index: int, hp2state: dict[str, Any]) -> None:
        # Costs: from the longest recipe that has the dataset (they agree across recipes).
        ordered = sorted(hp2state.items(), key=lambda kv: -int(kv[0]) if kv[0].isdigit() else 0)
        for hp, state in ordered:
            if not _NAME.fullmatch(hp):
                raise BenchError(f"recipe name {hp[:40]!r} is not a plain name")
            state = as_state(state)
            if not isinstance(state, dict) or "all_results" not in state:
                raise BenchError(f"arch {index} hp {hp!r}: not an ArchResults state")
            all_results = state["all_results"]
            dataset_seed = state.get("dataset_seed") or {}
            for (dataset, seed), rc in all_results.items():
                if not isinstance(dataset, str) or not _NAME.fullmatch(dataset):
                    raise BenchError(f"dataset name {str(dataset)[:40]!r} is not a plain name")
                seed = check_seed(seed, f"{dataset} hp {hp!r}")
                epochs, curves = results_count_curves(dataset, rc)
                for name, values in curves.items():  # validated as the plain importers do
                    check_curve(name, values, f"{dataset} hp {hp!r} seed {seed}")
                self._group(dataset, hp).put(index, seed, epochs, curves)
            for dataset, seeds in dataset_seed.items():
                if (dataset, index) in self.cost_hp:
                    continue
                rcs = [as_state(all_results[(dataset, s)]) for s in seeds]
                if not rcs:
                    continue
                seeds = [check_seed(s, f"{dataset} costs") for s in seeds]
                cost = {
                    "flops_m": _legacy_fix([_f(r.get("flop")) for r in rcs], seeds),
                    "params_m": _legacy_fix([_f(r.get("params")) for r in rcs], seeds),
                }
                lats = []
                for r in rcs:  # ResultsCount.get_latency: mean of the list, -1 if None
                    lat = r.get("latency")
                    if isinstance(lat, (list, tuple)) and lat:
                        v = sum(_f(x) for x in lat) / len(lat)
                        if v > 0:
                            lats.append(v)
                if lats:
                    cost["latency_s"] = sum(lats) / len(lats)
                self.costs.setdefault(dataset, {})[index] = cost
                self.cost_hp[(dataset, index)] = hp

    def groups(self) -> Iterator[GroupData]:
        for (dataset, hp), spill in sorted(self.entries.items()):
            seeds = sorted({s for _, s in spill.where})
            rows = np.array(sorted({i for i, _ in spill.where}), np.int64)
            names = set(spill.names)
            if "epoch_time" in names:
                names.add(TRAIN_TIME)
            metrics = metric_order(names)
            status = np.zeros((len(rows), len(seeds)), np.uint8)
            r_pos = {int(i): k for k, i in enumerate(rows)}
            s_pos = {sd: k for k, sd in enumerate(seeds)}  # not seeds.index: linear
            for index, seed in spill.where:
                status[r_pos[index], s_pos[seed]] = STATUS_CODES["ok"]
            shape = (len(rows), len(seeds), len(metrics), spill.epochs)
            data = _StreamedRows(
                shape, lambda s=spill, r=rows, sd=seeds, m=metrics: s.blocks(r, sd, m)
            )
            yield GroupData(dataset, hp, seeds, rows, metrics, spill.epochs, False, status, data)

    def cost_data(self) -> list[CostData]:
        out = []
        for dataset, per_arch in sorted(self.costs.items()):
            names = metric_order(set().union(*per_arch.values()))
            names = [n for n in ("params_m", "flops_m", "latency_s") if n in names]
            values = np.full((self.space.size, len(names)), np.nan)
            for index, cost in per_arch.items():
                for k, n in enumerate(names):
                    values[index, k] = cost.get(n, math.nan)
            out.append(CostData(dataset, names, values))
        return out


def check_meta_archs(meta_archs: Any, source: str, space: str = "nb201") -> None:
    """The file's arch list must be the official index order of ``space`` (so indices
    agree)."""
    table_space(space).check_meta_archs(meta_archs, source)


def space_of_meta_archs(meta_archs: Any, source: str) -> str:
    """The table space an official ``meta_archs`` list belongs to, told by its length
    (15,625 topology cells or 32,768 size configurations)."""
    n = len(meta_archs) if isinstance(meta_archs, (list, tuple)) else None
    for name in ("nb201", "nats-sss"):
        if n == table_space(name).size:
            return name
    sizes = {name: table_space(name).size for name in ("nb201", "nats-sss")}
    what = n if n is not None else type(meta_archs).__name__
    raise BenchError(
        f"{source}: 'meta_archs' has {what} entries; expected one of {sizes} "
        "(NATS-Bench topology or size)"
    )


#: Exceptions a malformed (not malicious: those are refused while loading) structure of plain
#: containers raises in the conversion below; they become one-line BenchErrors.
_MALFORMED = (TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError)

#: Dataset and recipe names: the official ones are like "ImageNet16-120" and "200".
_NAME = re.compile(r"[0-9A-Za-z][0-9A-Za-z_.-]{0,63}")

#: Longest training curve accepted (the official recipes go to 200 epochs).
MAX_EPOCHS = 10_000


def _keys(obj: dict) -> list[str]:
    return [repr(k)[:40] for k in list(obj)[:5]]


def _hp_map(infos: Any, hp_of: Callable[[str], str], where: str) -> dict[str, Any]:
    if not isinstance(infos, dict) or not all(isinstance(k, str) for k in infos):
        raise BenchError(f"{where}: expected a dict of recipe name -> ArchResults state")
    return {hp_of(k): v for k, v in infos.items()}


def _convert_whole(
    obj: Any,
    source: str,
    hp_of: Callable[[str], str],
    space: str | None = "nb201",
    spill_dir: Path | None = None,
) -> _Collector:
    """Convert a whole official dict; ``space=None`` tells it from ``meta_archs``."""
    if not isinstance(obj, dict) or not {"meta_archs", "arch2infos"} <= set(obj):
        keys = _keys(obj) if isinstance(obj, dict) else type(obj).__name__
        raise BenchError(
            f"{source} is not a NAS-Bench-201 / NATS-Bench file: expected a dict with "
            f"'meta_archs' and 'arch2infos', got {keys}"
        )
    if space is None:
        space = space_of_meta_archs(obj["meta_archs"], source)
    check_meta_archs(obj["meta_archs"], source, space)
    col = _Collector(space, spill_dir)
    arch2infos = obj["arch2infos"]
    if not isinstance(arch2infos, dict) or not all(type(k) is int for k in arch2infos):
        raise BenchError(f"{source}: 'arch2infos' is not a dict keyed by arch index")
    for index in sorted(arch2infos):
        where = f"{source}: arch {index}"
        col.add_arch(index, _hp_map(arch2infos[index], hp_of, where), source)
        arch2infos[index] = None  # free as we go: the official v1.1 dict is ~25 GB in RAM
    return col


def _nb201_hp(key: str) -> str:
    if key not in NB201_HP_KEYS:
        raise BenchError(f"NB201 result key {key[:40]!r} unknown; expected {list(NB201_HP_KEYS)}")
    return NB201_HP_KEYS[key]


def read_nb201(
    src: str | os.PathLike[str], spill_dir: Path | None = None
) -> tuple[_Collector, dict[str, Any]]:
    """Read an official NB201 ``.pth`` (or the per-arch archive directory); curves are
    spilled to ``spill_dir`` (default: a temporary directory) as they are read."""
    src = Path(src)
    if src.is_dir():
        files = sorted(p for p in src.iterdir() if re.fullmatch(r"\d{6}-FULL\.pth", p.name))
        if not files:
            raise BenchError(f"{str(src)!r} holds no NNNNNN-FULL.pth files of an NB201 archive")
        col = _Collector("nb201", spill_dir)
        for p in files:
            obj = load_torch_file(p)
            if not isinstance(obj, dict) or not {"less", "full"} <= set(obj):
                raise BenchError(f"{str(p)!r}: expected a dict with 'less' and 'full'")
            col.add_arch(int(p.name[:6]), _hp_map(obj, _nb201_hp, repr(str(p))), repr(str(p)))
        return col, {"source_format": "nb201-archive", "source": src.name}
    if not src.is_file():
        raise BenchError(f"NB201 source {str(src)!r} does not exist")
    obj = load_torch_file(src)
    col = _convert_whole(obj, repr(str(src)), _nb201_hp, "nb201", spill_dir)
    return col, {"source_format": "nb201", "source": src.name}


def read_nats(
    src: str | os.PathLike[str], space: str | None = None, spill_dir: Path | None = None
) -> tuple[_Collector, dict[str, Any]]:
    """Read a NATS-Bench directory (``-simple`` / ``-full``) or single pickle, topology or
    size. ``space`` (``"nb201"`` or ``"nats-sss"``) is what the caller expects; ``None``
    takes the file's (told by its ``meta_archs``)."""
    src = Path(src)
    if src.is_file():
        col = _convert_whole(load_bz2_pickle(src), repr(str(src)), str, space, spill_dir)
        return col, {"source_format": _nats_format(col.space.name), "source": src.name}
    meta_path = src / f"meta{_NATS_EXT}"
    if not meta_path.is_file():
        raise BenchError(f"{str(src)!r} is not a NATS-Bench directory (no meta{_NATS_EXT})")
    meta = load_bz2_pickle(meta_path)
    if not isinstance(meta, dict) or "meta_archs" not in meta:
        raise BenchError(f"{str(meta_path)!r}: expected a dict with 'meta_archs'")
    if space is None:
        space = space_of_meta_archs(meta["meta_archs"], repr(str(meta_path)))
    check_meta_archs(meta["meta_archs"], repr(str(meta_path)), space)
    del meta  # 32,768 strings for the size space: not kept while the archs are read
    col = _Collector(space, spill_dir)
    pattern = re.compile(r"(\d{1,6})" + re.escape(_NATS_EXT))
    found = 0
    for p in sorted(src.iterdir()):
        m = pattern.fullmatch(p.name)
        if not m:
            continue
        obj = load_bz2_pickle(p)
        col.add_arch(int(m.group(1)), _hp_map(obj, str, repr(str(p))), repr(str(p)))
        found += 1
    if not found:
        raise BenchError(f"{str(src)!r} holds no per-arch NNNNNN{_NATS_EXT} files")
    return col, {"source_format": _nats_format(space), "source": src.name}


def _nats_format(space: str) -> str:
    return "nats-sss" if space == "nats-sss" else "nats-tss"


def read_nats_tss(
    src: str | os.PathLike[str], spill_dir: Path | None = None
) -> tuple[_Collector, dict[str, Any]]:
    """Read a NATS-Bench topology directory (``-simple`` / ``-full``) or single pickle."""
    return read_nats(src, "nb201", spill_dir)


def read_nats_sss(
    src: str | os.PathLike[str], spill_dir: Path | None = None
) -> tuple[_Collector, dict[str, Any]]:
    """Read a NATS-Bench size directory (``-simple`` / ``-full``) or single pickle."""
    return read_nats(src, "nats-sss", spill_dir)


#: Official formats -> their reader ``(src, spill_dir) -> (collector, table metadata)``.
OFFICIAL_READERS: dict[str, Callable[..., tuple[_Collector, dict[str, Any]]]] = {
    "nb201": read_nb201,
    "nats-tss": read_nats_tss,
    "nats-sss": read_nats_sss,
}


def import_official(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    kind: str,
    overwrite: bool = False,
) -> Path:
    """Import an official file (``kind`` ``"nb201"``, ``"nats-tss"`` or ``"nats-sss"``) into
    a table (of space ``nb201`` for the first two, ``nats-sss`` for the size space)."""
    reader = OFFICIAL_READERS.get(kind)
    if reader is None:
        raise BenchError(
            f"official format {kind!r} unknown; expected one of {list(OFFICIAL_READERS)}"
        )
    # Curves are spilled next to the output (same filesystem, not a RAM-backed /tmp) while
    # the source is read, then written into the table row by row: an import holds one arch
    # at a time in memory (plus, for a single-file source, the parsed file itself).
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    spill_dir = Path(tempfile.mkdtemp(prefix=f".{out.name}.import-", dir=out.parent))
    col = None
    try:
        col, meta = reader(src, spill_dir)
        if not col.entries:
            raise BenchError(f"{str(src)!r} holds no results")
        meta["latency_batch"] = OFFICIAL_LATENCY_BATCH
        return write_table(
            out,
            col.groups(),
            col.cost_data(),
            meta=meta,
            overwrite=overwrite,
            space=col.space.name,
        )
    finally:
        if col is not None:
            col.close()
        shutil.rmtree(spill_dir, ignore_errors=True)

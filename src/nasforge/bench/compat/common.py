"""What the facade's parts share: official names and conventions (dataset / set names,
the official network config, averages, ``$TORCH_HOME``) and its errors."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.errors import BenchError
from nasforge.spaces.nats_sss import CELL as _SSS_CELL

_CLASSES = {"cifar10-valid": 10, "cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}
#: The NB201 network the official files were trained with (api_utils ``arch_config``).
_OFFICIAL_C, _OFFICIAL_N = 16, 5


def _tiny_config(arch_str: str, dataset: str, build: dict[str, Any]) -> dict[str, Any]:
    """``arch_config`` of a topology trial (api_utils ``ResultsCount.arch_config``)."""
    return {
        "channel": build.get("C", _OFFICIAL_C),
        "num_cells": build.get("N", _OFFICIAL_N),
        "arch_str": arch_str,
        "class_num": _CLASSES.get(dataset, build.get("num_classes")),
    }


def _shape_config(arch_str: str, dataset: str, build: dict[str, Any]) -> dict[str, Any]:
    """``arch_config`` of a size-space trial, as AutoDL-Projects
    ``exps/NATS-Bench/sss-collect.py`` (``account_one_arch``) writes it."""
    return {
        "name": "infer.shape.tiny",
        "channels": arch_str,
        "arch_str": arch_str,
        "genotype": _SSS_CELL,
        "class_num": _CLASSES.get(dataset, build.get("num_classes")),
    }


#: Table space -> the ``arch_config`` its trials carry.
_ARCH_CONFIGS: dict[str, Callable[[str, str, dict[str, Any]], dict[str, Any]]] = {
    "nb201": _tiny_config,
    "nats-sss": _shape_config,
}


def _net_config(cfg: dict[str, Any], str2structure: Callable[[str], Any] | None) -> dict[str, Any]:
    """``ResultsCount.get_config`` (nats_bench api_utils.py): ``infer.shape.tiny`` for a
    size-space trial, ``infer.tiny`` otherwise (``genotype`` via ``str2structure`` if
    given, else the arch string)."""
    if cfg.get("name") == "infer.shape.tiny":
        genotype = cfg["genotype"]
        return {
            "name": "infer.shape.tiny",
            "channels": cfg["channels"],
            "genotype": genotype if str2structure is None else str2structure(genotype),
            "num_classes": cfg["class_num"],
        }
    out: dict[str, Any] = {"name": "infer.tiny", "C": cfg["channel"], "N": cfg["num_cells"]}
    if str2structure is None:
        out["arch_str"] = cfg["arch_str"]
    else:
        out["genotype"] = str2structure(cfg["arch_str"])
    out["num_classes"] = cfg["class_num"]
    return out


#: Base names of the newest official files (nas_201_api/api_201.py ALL_BENCHMARK_FILES,
#: nats_bench/api_topology.py ALL_BASE_NAMES, nats_bench/api_size.py ALL_BASE_NAMES).
NB201_BASE_NAME = "NAS-Bench-201-v1_1-096897"
NATS_TSS_BASE_NAME = "NATS-tss-v1_0-3ffb9"
NATS_SSS_BASE_NAME = "NATS-sss-v1_0-50262"
#: Suffix of the table ``create(None, ...)`` looks for next to the official files.
TABLE_SUFFIX = ".table"


class CompatKeyError(BenchError, KeyError):
    """A dataset / seed / key an official object does not have (a ``KeyError`` there)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


def _official_set(dataset: str, prefix: str) -> str:
    """Our metric prefix -> the official evaluation-set name."""
    if prefix == "valid":
        return "x-valid"
    if prefix == "valtest":
        return "ori-test"
    return "ori-test" if dataset in ("cifar10", "cifar10-valid") else "x-test"


def remap_dataset_set_names(dataset: str, metric_on_set: str) -> tuple[str, str]:
    """The official ``remap_dataset_set_names`` (nats_bench api_utils.py)."""
    if dataset == "cifar10" and metric_on_set == "valid":
        return "cifar10-valid", "x-valid"
    if dataset == "cifar10" and metric_on_set == "test":
        return "cifar10", "ori-test"
    if dataset in ("cifar100", "ImageNet16-120") and metric_on_set == "valid":
        return dataset, "x-valid"
    if dataset in ("cifar100", "ImageNet16-120") and metric_on_set == "test":
        return dataset, "x-test"
    return dataset, metric_on_set


def _py_mean(values: list[Any]) -> Any:
    return sum(values) / len(values)


def _np_mean(values: list[Any]) -> Any:
    return np.mean(values)


def _np_sum(values: list[Any]) -> Any:
    return np.sum(values)


def _none(x: float) -> float | None:
    return None if x != x else x


def get_torch_home() -> str:
    """``$TORCH_HOME``, else ``$HOME/.torch`` (nats_bench api_utils.get_torch_home)."""
    if "TORCH_HOME" in os.environ:
        return os.environ["TORCH_HOME"]
    if "HOME" in os.environ:
        return os.path.join(os.environ["HOME"], ".torch")
    raise BenchError("neither TORCH_HOME nor HOME is set; pass the table path explicitly")


def _no_weights(where: str) -> BenchError:
    return BenchError(
        f"{where}: nasforge tables store metrics and costs, not trained weights; train the "
        "arch (`nasforge train`) or load the official NB201 archive / NATS -full checkpoints "
        "with the official API"
    )


def _default_table(base: str) -> Path:
    """The table ``create(None, ...)`` opens: ``<torch home>/<official base name>.table``.

    Where only the official file is there, it is returned: opening it gives the one-time
    import command."""
    home = Path(get_torch_home())
    table = home / f"{base}{TABLE_SUFFIX}"
    if (table / "manifest.json").is_file():
        return table
    official = [
        home / f"{base}.pth",
        home / f"{base}-simple",
        home / f"{base}-full",
        home / f"{base}.pickle.pbz2",
        home / f"{base.replace('v1_1-096897', 'v1_1')}-archive",
    ]
    found = next((p for p in official if p.exists()), None)
    if found is not None:
        return found  # _open explains how to import it (or opens its sibling table)
    raise BenchError(
        f"no table at {str(table)!r} (and no official {base} file in {str(home)!r}); set "
        "TORCH_HOME or pass the table path"
    )

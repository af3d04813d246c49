"""A restricted unpickler for the official NAS-Bench-201 / NATS-Bench files.

Pickle runs whatever callable a file names, so an untrusted benchmark file could execute
arbitrary code on load. This unpickler resolves only the globals those files need —
containers, numpy scalars/arrays, tensors (dropped: weights are never imported) and the
official result classes (replaced by inert stand-ins) — and refuses everything else with a
:class:`BenchError` before anything runs.

``RESTRICTED_PICKLE`` is a module-like object for ``torch.load(pickle_module=...)``.
"""

from __future__ import annotations

import collections
import io
import pickle
import types
from typing import Any, BinaryIO

import numpy as np

from nasforge.errors import BenchError


class DroppedTensor:
    """What a tensor in an official file becomes: network weights are not imported."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<dropped tensor>"


_DROPPED = DroppedTensor()


def _drop(*_args: Any, **_kwargs: Any) -> DroppedTensor:
    return _DROPPED


class OfficialObject:
    """Inert stand-in for a pickled official result object (``ArchResults``,
    ``ResultsCount``): keeps its ``__dict__`` (the same dict its ``state_dict()`` returns) and
    runs none of its code."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots-dict)
            state = {**(state[0] or {}), **(state[1] or {})}
        if not isinstance(state, dict):
            raise BenchError(f"unexpected pickled state of {type(self).__name__}: {type(state)}")
        self.__dict__.update(state)


class ArchResultsState(OfficialObject):
    pass


class ResultsCountState(OfficialObject):
    pass


def _numpy_globals() -> dict[tuple[str, str], Any]:
    out: dict[tuple[str, str], Any] = {
        ("numpy", "dtype"): np.dtype,
        ("numpy", "ndarray"): np.ndarray,
    }
    try:
        from numpy._core import multiarray as ma
    except ImportError:  # numpy < 2
        from numpy.core import multiarray as ma  # type: ignore[no-redef]
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        out[(mod, "scalar")] = ma.scalar
        out[(mod, "_reconstruct")] = ma._reconstruct
    for name in ("Float64DType", "Float32DType", "Int64DType", "Int32DType", "BoolDType"):
        cls = getattr(np.dtypes, name, None) if hasattr(np, "dtypes") else None
        if cls is not None:
            out[("numpy.dtypes", name)] = cls
    return out


#: (module, name) -> the object the unpickler may return for it. Nothing else resolves.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "defaultdict"): collections.defaultdict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "object"): object,
    ("__builtin__", "set"): set,
    ("__builtin__", "object"): object,
    # Tensors (trained weights in the '-full' archives): never rebuilt, never torch.load-ed
    # from embedded bytes (torch.storage._load_from_bytes would unpickle without limits).
    ("torch._utils", "_rebuild_tensor"): _drop,
    ("torch._utils", "_rebuild_tensor_v2"): _drop,
    ("torch._utils", "_rebuild_parameter"): _drop,
    ("torch._utils", "_rebuild_parameter_with_state"): _drop,
    ("torch._tensor", "_rebuild_from_type_v2"): _drop,
    ("torch.storage", "_load_from_bytes"): _drop,
    ("torch", "Size"): tuple,
    # The official result classes, pickled as objects by some re-saved files.
    ("nas_201_api.api_utils", "ArchResults"): ArchResultsState,
    ("nas_201_api.api_utils", "ResultsCount"): ResultsCountState,
    ("nats_bench.api_utils", "ArchResults"): ArchResultsState,
    ("nats_bench.api_utils", "ResultsCount"): ResultsCountState,
    **_numpy_globals(),
}


class RestrictedUnpickler(pickle.Unpickler):
    """An ``Unpickler`` whose ``find_class`` admits only :data:`ALLOWED_GLOBALS`."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise BenchError(
                f"refused to load: the file asks for {module}.{name}, which is not one of the "
                "classes an official NAS-Bench-201 / NATS-Bench file needs (possibly a "
                "malicious or foreign pickle)"
            ) from None


def load(file: BinaryIO, **kwargs: Any) -> Any:
    """``pickle.load`` through :class:`RestrictedUnpickler`."""
    return RestrictedUnpickler(file, **kwargs).load()


def loads(data: bytes, **kwargs: Any) -> Any:
    return load(io.BytesIO(data), **kwargs)


#: A module-like object for ``torch.load(..., pickle_module=RESTRICTED_PICKLE)``.
RESTRICTED_PICKLE = types.ModuleType("nasforge_restricted_pickle")
RESTRICTED_PICKLE.Unpickler = RestrictedUnpickler  # type: ignore[attr-defined]
RESTRICTED_PICKLE.load = load  # type: ignore[attr-defined]
RESTRICTED_PICKLE.loads = loads  # type: ignore[attr-defined]
RESTRICTED_PICKLE.UnpicklingError = pickle.UnpicklingError  # type: ignore[attr-defined]


def as_state(obj: Any) -> Any:
    """The plain ``state_dict`` form of an official result (dict or stand-in object)."""
    if isinstance(obj, OfficialObject):
        return dict(obj.__dict__)
    return obj

"""Reading the official NAS-Bench-201 / NATS-Bench files with code we control end to end.

Pickle runs whatever callable a file names, and ``torch.load`` adds more ways in (it hands
TorchScript archives to ``torch.jit.load`` and, for legacy files, writes ``<name>.patch`` files
for pickled modules). So no untrusted byte ever reaches ``torch.load``, ``torch.jit.load`` or an
unrestricted unpickler here:

* :class:`RestrictedUnpickler` resolves only the globals the official files need, and every one
  of them is a *guard* we wrote: callables validate their arguments and build fresh, inert
  objects (containers, Python numbers, lazy :class:`TensorRef` views); the official result
  classes become :class:`OfficialObject` stand-ins. No BUILD opcode can set attributes on an
  admitted global (guards and stand-in classes refuse ``__setstate__``/``setattr``), BUILD on an
  instance only reaches the ``__setstate__`` methods below, and persistent ids are resolved by
  our own code (plain storages only; ``('module', ...)`` ids are refused).
* :func:`load_torch_file` reads both ``torch.save`` containers itself: the zip format (its
  ``data.pkl`` plus the raw ``data/<key>`` storage records) and the legacy pre-1.6 format
  (magic, protocol, sys-info and main pickles followed by the raw storages): the official NB201
  ``.pth`` files (v1.0 Dec 2019, v1.1 2020) predate torch 1.6, which made zip the default.
  Plain pickles of tensors (NATS-Bench files) embed each storage as a small legacy blob
  (``torch.storage._load_from_bytes``), read by the same code. TorchScript archives (``constants.pkl``,
  ``code/``), compressed or unknown zip entries, big-endian and tar-era files are refused with a
  :class:`BenchError`. Storage size claims are checked against the bytes really present before
  anything is allocated; tensors stay lazy and are read only when a number is asked of them.
* :func:`load_bz2_pickle` reads the NATS-Bench ``.pickle.pbz2`` files (bz2-compressed plain
  pickles) with the decompressed size capped at ``max(BZ2_MIN_CAP, BZ2_MAX_RATIO x compressed
  size)`` (1 GiB, 100x): real pickles of float tables compress about 3-10x, a bz2 bomb far more.

Memory: CPython's C unpickler grows its memo to the largest PUT index a stream names (a 20-byte
file can ask for tens of GB), and length prefixes can claim huge buffers. So on Linux every load
runs under a temporary address-space limit (``RLIMIT_AS``) of the current size plus
``max(LOAD_MIN_BUDGET, LOAD_BUDGET_RATIO x input bytes)`` (4 GiB, 16x; 64x the compressed size
for ``.pbz2``): the official v1.1 file of 4.7 GB needs ~25 GB of Python objects, well inside. An
overrun is a MemoryError, reported as a BenchError. The limit is process-wide while a load runs
and restored afterwards; on other systems no limit is set (the checks above still apply).
"""

from __future__ import annotations

import bz2
import collections
import contextlib
import io
import os
import pickle
import re
import stat
import struct
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from nasforge.errors import BenchError

#: Decompressed-size cap of a ``.pbz2`` file: max(BZ2_MIN_CAP, BZ2_MAX_RATIO * compressed).
BZ2_MIN_CAP = 1 << 30
BZ2_MAX_RATIO = 100
#: Address-space budget of one load: max(LOAD_MIN_BUDGET, LOAD_BUDGET_RATIO * input bytes).
LOAD_MIN_BUDGET = 4 << 30
LOAD_BUDGET_RATIO = 16
#: For ``.pbz2`` files the input bytes are counted as BZ2_BUDGET_RATIO x the compressed size.
BZ2_BUDGET_RATIO = 64
#: A tensor view materialised as numpy may not exceed this many bytes.
MAX_TENSOR_BYTES = 1 << 30
_MAX_DIMS = 64

#: torch's legacy container header (torch/serialization.py MAGIC_NUMBER, PROTOCOL_VERSION).
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001


def oneline(exc: BaseException, limit: int = 300) -> str:
    """An exception's text on one line, shortened: messages end up in a terminal."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _refuse(what: str) -> BenchError:
    return BenchError(f"refused to load: {what} (possibly a malicious or foreign file)")


#: Where a torch container's bytes are: a file, or bytes embedded in a pickle.
Source = Path | bytes


def _open(src: Source) -> BinaryIO:
    return open(src, "rb") if isinstance(src, Path) else io.BytesIO(src)


def _name(src: Source) -> str:
    return repr(str(src)) if isinstance(src, Path) else "an embedded storage"


# -- inert objects ------------------------------------------------------------------------------
class _Inert:
    """Base of every object we hand to the unpickler: BUILD on it is refused."""

    __slots__ = ()

    def __setstate__(self, state: Any) -> None:
        raise _refuse(f"the file sets the state of a {type(self).__name__}")


class _Guard(_Inert):
    """What an admitted global resolves to: a named, immutable wrapper. Callable guards run
    our validator; token guards (storage types, ``numpy.ndarray``) are only arguments."""

    __slots__ = ("_fn", "_name", "payload")

    def __init__(self, name: str, fn: Callable[..., Any] | None = None, payload: Any = None):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_fn", fn)
        object.__setattr__(self, "payload", payload)

    def __call__(self, *args: Any) -> Any:
        if self._fn is None:
            raise _refuse(f"the file calls {self._name}, which is not callable")
        return self._fn(*args)

    def __setattr__(self, name: str, value: Any) -> None:
        raise _refuse(f"the file sets attribute {name!r} of {self._name}")

    def __delattr__(self, name: str) -> None:
        raise _refuse(f"the file deletes attribute {name!r} of {self._name}")

    def __setstate__(self, state: Any) -> None:
        raise _refuse(f"the file sets the state of the global {self._name} (BUILD on a global)")

    def __repr__(self) -> str:
        return f"<admitted {self._name}>"


class _Sealed(type):
    """Metaclass of the result stand-ins: their classes cannot be modified by a file."""

    def __setattr__(cls, name: str, value: Any) -> None:
        raise _refuse(f"the file sets attribute {name!r} of class {cls.__name__}")

    def __delattr__(cls, name: str) -> None:
        raise _refuse(f"the file deletes attribute {name!r} of class {cls.__name__}")

    @property
    def __setstate__(cls) -> Any:  # a data descriptor: wins over the class's own method
        raise _refuse(f"the file sets the state of class {cls.__name__} (BUILD on a global)")


class OfficialObject(metaclass=_Sealed):
    """Inert stand-in for a pickled official result object (``ArchResults``,
    ``ResultsCount``): keeps its ``__dict__`` (the same dict its ``state_dict()`` returns) and
    runs none of its code."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots-dict)
            state = {**(state[0] or {}), **(state[1] or {})}
        if not isinstance(state, dict):
            raise _refuse(f"a {type(self).__name__} state of type {type(state).__name__}")
        for k in state:
            # no dunder names: an instance '__setstate__' would take over the next BUILD
            if not isinstance(k, str) or k.startswith("__"):
                raise _refuse(f"the file sets attribute {str(k)[:40]!r} of a result object")
        self.__dict__.update(state)


class ArchResultsState(OfficialObject):
    pass


class ResultsCountState(OfficialObject):
    pass


class _StateDict(collections.OrderedDict):
    """An ``OrderedDict`` (e.g. a ``state_dict``) whose pickled attributes (``_metadata``) are
    kept as plain instance attributes and nothing else."""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise _refuse(f"unexpected OrderedDict state of type {type(state).__name__}")
        for k, v in state.items():
            if not isinstance(k, str) or k.startswith("__"):
                raise _refuse(f"the file sets attribute {str(k)[:40]!r} of an OrderedDict")
            self.__dict__[k] = v


class _Dtype(_Inert):
    """A pickled ``numpy.dtype`` (numeric kinds only), before its state is applied."""

    __slots__ = ("dtype",)

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = dtype

    def __setstate__(self, state: Any) -> None:
        # numpy's dtype state: (version, byteorder, subarray, names, fields, elsize, alignment,
        # flags[, metadata]); a plain numeric dtype has no subarray/names/fields and elsize -1.
        ok = (
            isinstance(state, tuple)
            and len(state) in (8, 9)
            and state[1] in ("<", ">", "|", "=")
            and state[2:5] == (None, None, None)
            and state[5:7] == (-1, -1)
            and (len(state) == 8 or state[8] is None)
        )
        if not ok:
            raise _refuse("a numpy dtype with an unexpected state")
        if state[1] == ">":
            self.dtype = self.dtype.newbyteorder(">")


class PickledArray(_Inert):
    """A pickled ``numpy.ndarray`` of a numeric dtype, rebuilt from its raw bytes."""

    __slots__ = ("array",)

    def __init__(self) -> None:
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        if self.array is not None or not isinstance(state, tuple) or len(state) not in (4, 5):
            raise _refuse("a numpy array with an unexpected state")
        shape, dtype, fortran, raw = state[-4:]
        if isinstance(raw, str):  # protocol-0/1 numpy pickles keep the bytes as latin-1 text
            raw = raw.encode("latin1")
        if not isinstance(dtype, _Dtype) or not isinstance(raw, bytes):
            raise _refuse("a numpy array without a numeric dtype and raw bytes")
        shape = _int_tuple(shape, "numpy array shape")
        n = 1
        for s in shape:
            n *= s
        if n * dtype.dtype.itemsize != len(raw):
            raise _refuse(f"a numpy array of shape {shape} with {len(raw)} bytes of data")
        self.array = np.frombuffer(raw, dtype.dtype).reshape(shape, order="F" if fortran else "C")

    def __float__(self) -> float:
        arr = self._get()
        if arr.size != 1:
            raise TypeError(f"expected a number, found an array of shape {arr.shape}")
        return float(arr.reshape(()))

    def __iter__(self) -> Any:
        return iter(self._get().tolist())

    def __len__(self) -> int:
        return len(self._get())

    def _get(self) -> np.ndarray:
        if self.array is None:
            raise BenchError("a pickled numpy array has no data")
        return self.array


class StorageRef(_Inert):
    """A plain storage of an official torch file: where its bytes are, never the bytes."""

    __slots__ = ("dtype", "member", "numel", "offset", "src", "torch_type")

    def __init__(self, src: Source, member: str | None, dtype: np.dtype, numel: int, tt: str):
        self.src, self.member, self.dtype, self.numel, self.torch_type = (
            src,
            member,
            dtype,
            numel,
            tt,
        )
        self.offset: int | None = None  # byte offset in the file (legacy format)

    def read(self, first: int, count: int) -> np.ndarray:
        """``count`` elements from element ``first`` (bounds already checked)."""
        size = self.dtype.itemsize
        if self.member is not None:
            with _open(self.src) as fz, zipfile.ZipFile(fz) as zf, zf.open(self.member) as f:
                f.seek(first * size)
                raw = f.read(count * size)
        else:
            if self.offset is None:
                raise BenchError(f"{_name(self.src)}: a storage has no data")
            with _open(self.src) as f:
                f.seek(self.offset + first * size)
                raw = f.read(count * size)
        if len(raw) != count * size:
            raise BenchError(f"{_name(self.src)}: a tensor's data is cut short")
        if self.torch_type == "BFloat16Storage":  # numpy has no bfloat16: widen to float32
            return (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        return np.frombuffer(raw, self.dtype)


class TensorRef(_Inert):
    """A tensor of an official file (e.g. trained weights in the ``-full`` archives): shape and
    location only; :meth:`numpy` reads it on demand, ``float()`` works for one element."""

    __slots__ = ("offset", "shape", "storage", "stride")

    def __init__(self, storage: StorageRef, offset: int, shape: tuple, stride: tuple):
        self.storage, self.offset, self.shape, self.stride = storage, offset, shape, stride

    @property
    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    def numpy(self) -> np.ndarray:
        n = self.numel
        if n == 0:
            return np.zeros(self.shape, self.storage.dtype)
        span = sum((s - 1) * st for s, st in zip(self.shape, self.stride, strict=True)) + 1
        if max(n, span) * self.storage.dtype.itemsize > MAX_TENSOR_BYTES:
            raise BenchError(f"a tensor of shape {self.shape} is too large to read")
        flat = self.storage.read(self.offset, span)
        isz = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat, self.shape, tuple(st * isz for st in self.stride), writeable=False
        )
        return np.array(view)

    def __float__(self) -> float:
        if self.numel != 1:
            raise BenchError(f"expected a number, found a tensor of shape {self.shape}")
        return float(self.numpy().reshape(()))

    def __repr__(self) -> str:
        return f"<tensor {self.storage.torch_type} {self.shape}>"


# -- validators behind the admitted callables ---------------------------------------------------
def _int_tuple(v: Any, what: str) -> tuple[int, ...]:
    if not isinstance(v, (tuple, list)) or len(v) > _MAX_DIMS:
        raise _refuse(f"{what} is not a short tuple of ints")
    if not all(type(x) is int and x >= 0 for x in v):
        raise _refuse(f"{what} {tuple(v)!r} holds something other than non-negative ints")
    return tuple(v)


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *rest: Any) -> TensorRef:
    """Our ``torch._utils._rebuild_tensor[_v2]``: a bounds-checked lazy view of a storage."""
    if not isinstance(storage, StorageRef):
        raise _refuse("a tensor whose storage is not a plain storage of this file")
    if type(offset) is not int or offset < 0:
        raise _refuse(f"a tensor storage offset of type {type(offset).__name__}")
    shape = _int_tuple(size, "a tensor size")
    strides = _int_tuple(stride, "a tensor stride")
    if len(shape) != len(strides) or len(rest) > 3:
        raise _refuse("a tensor with mismatched size/stride or unexpected arguments")
    ref = TensorRef(storage, offset, shape, strides)
    if ref.numel:
        end = offset + sum((s - 1) * st for s, st in zip(shape, strides, strict=True)) + 1
        if end > storage.numel:
            raise _refuse(
                f"a tensor view reaching element {end} of a {storage.numel}-element storage"
            )
    return ref


def _rebuild_parameter(data: Any, *rest: Any) -> TensorRef:
    if not isinstance(data, TensorRef) or len(rest) > 3:
        raise _refuse("a parameter that is not a plain tensor")
    return data


_EMBEDDED = threading.local()


def _load_from_bytes(blob: Any) -> StorageRef:
    """Our ``torch.storage._load_from_bytes``: plain pickles of tensors (NATS-Bench files
    written with ``pickle``) embed each storage as a legacy ``torch.save`` blob; it is parsed
    by the same code as a file, and must hold exactly one plain storage."""
    if not isinstance(blob, bytes):
        raise _refuse("an embedded storage that is not bytes")
    if getattr(_EMBEDDED, "active", False):  # torch never nests blobs: refuse, don't recurse
        raise _refuse("an embedded storage inside an embedded storage")
    _EMBEDDED.active = True
    try:
        obj = _load_zip(blob) if blob.startswith(b"PK\x03\x04") else _load_legacy(blob)
    finally:
        _EMBEDDED.active = False
    if not isinstance(obj, StorageRef):
        raise _refuse(f"an embedded storage blob holding a {type(obj).__name__}")
    return obj


def _size(dims: Any = ()) -> tuple[int, ...]:
    return _int_tuple(dims, "torch.Size")


def _ordered_dict(*args: Any) -> _StateDict:
    if len(args) > 1 or (args and not isinstance(args[0], (list, tuple))):
        raise _refuse("OrderedDict called with unexpected arguments")
    out = _StateDict()
    for pair in args[0] if args else ():
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise _refuse("OrderedDict items that are not pairs")
        out[pair[0]] = pair[1]
    return out


def _default_dict(factory: Any = None, *rest: Any) -> dict:
    # The factory is never called (we only read), so a plain dict holds the same data.
    if rest or not (factory is None or isinstance(factory, _Guard)):
        raise _refuse("defaultdict called with unexpected arguments")
    return {}


def _set_of(kind: type) -> Callable[..., Any]:
    def make(items: Any = ()) -> Any:
        if not isinstance(items, (list, tuple, set, frozenset)):
            raise _refuse(f"{kind.__name__} of a {type(items).__name__}")
        return kind(items)

    return make


def _codecs_encode(text: Any, encoding: Any = "utf-8") -> bytes:
    # Protocol-2 pickles spell bytes as _codecs.encode(<latin-1 text>, 'latin1').
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _refuse("_codecs.encode called with unexpected arguments")
    return text.encode("latin1")


def _bytes(*args: Any) -> bytes:
    if (args and not isinstance(args[0], (bytes, str))) or len(args) > 2:
        raise _refuse("bytes called with unexpected arguments")
    if not args:
        return b""
    return args[0] if isinstance(args[0], bytes) else args[0].encode("latin1")


_NUMERIC_DTYPES = frozenset(
    ("b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "c8", "c16")
)


def _np_dtype(spec: Any, align: Any = False, copy: Any = True) -> _Dtype:
    if spec not in _NUMERIC_DTYPES:
        raise _refuse(f"numpy dtype {str(spec)[:40]!r}; only plain numeric dtypes are read")
    return _Dtype(np.dtype(spec))


def _np_scalar(dtype: Any, data: Any = None) -> Any:
    if isinstance(data, str):
        data = data.encode("latin1")
    if not isinstance(dtype, _Dtype) or not isinstance(data, bytes):
        raise _refuse("numpy scalar with unexpected arguments")
    if len(data) != dtype.dtype.itemsize:
        raise _refuse(f"numpy scalar of {len(data)} bytes for dtype {dtype.dtype}")
    return np.frombuffer(data, dtype.dtype)[0].item()  # a plain Python number


_NDARRAY = _Guard("numpy.ndarray")


def _np_reconstruct(cls: Any, shape: Any, typecode: Any) -> PickledArray:
    # numpy always pickles arrays as _reconstruct(ndarray, (0,), b'b') + BUILD(state).
    if cls is not _NDARRAY or shape != (0,) or typecode not in (b"b", "b"):
        raise _refuse("numpy _reconstruct with unexpected arguments")
    return PickledArray()


def _np_frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> PickledArray:
    # numpy's protocol-5 form of an array: _frombuffer(<bytes>, dtype, shape, order).
    if not isinstance(buf, (bytes, bytearray)) or order not in ("C", "F"):
        raise _refuse("numpy _frombuffer with unexpected arguments")
    out = PickledArray()
    out.__setstate__((shape, dtype, order == "F", bytes(buf)))
    return out


# torch storage class name -> numpy dtype of its elements
_STORAGE_DTYPES = {
    "DoubleStorage": "<f8",
    "FloatStorage": "<f4",
    "HalfStorage": "<f2",
    "BFloat16Storage": "<u2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
    "ComplexFloatStorage": "<c8",
    "ComplexDoubleStorage": "<c16",
}


def _admitted() -> dict[tuple[str, str], Any]:
    out: dict[tuple[str, str], Any] = {}

    def add(names: tuple[str, ...], attr: str, fn: Callable[..., Any] | None, payload=None):
        for mod in names:
            out[(mod, attr)] = _Guard(f"{names[0]}.{attr}", fn, payload)

    add(("collections",), "OrderedDict", _ordered_dict)
    add(("collections",), "defaultdict", _default_dict)
    add(("builtins", "__builtin__"), "set", _set_of(set))
    add(("builtins", "__builtin__"), "frozenset", _set_of(frozenset))
    add(("builtins", "__builtin__"), "bytes", _bytes)
    add(("_codecs",), "encode", _codecs_encode)
    add(("torch._utils",), "_rebuild_tensor", _rebuild_tensor)
    add(("torch._utils",), "_rebuild_tensor_v2", _rebuild_tensor)
    add(("torch._utils",), "_rebuild_parameter", _rebuild_parameter)
    add(("torch._utils",), "_rebuild_parameter_with_state", _rebuild_parameter)
    add(("torch",), "Size", _size)
    add(("torch.storage",), "_load_from_bytes", _load_from_bytes)
    for name, dt in _STORAGE_DTYPES.items():
        add(("torch",), name, None, np.dtype(dt))
    add(("numpy",), "dtype", _np_dtype)
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        add((mod,), "scalar", _np_scalar)
        add((mod,), "_reconstruct", _np_reconstruct)
    for mod in ("numpy.core.numeric", "numpy._core.numeric"):
        add((mod,), "_frombuffer", _np_frombuffer)
    out[("numpy", "ndarray")] = _NDARRAY
    # The official result classes, pickled as objects by some re-saved files.
    for mod in ("nas_201_api.api_utils", "nats_bench.api_utils"):
        out[(mod, "ArchResults")] = ArchResultsState
        out[(mod, "ResultsCount")] = ResultsCountState
    return out


#: (module, name) -> the guard the unpickler gets for it. Nothing else resolves.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = _admitted()


# -- the unpickler ------------------------------------------------------------------------------
class _Storages:
    """Resolves the persistent ids of one torch file to :class:`StorageRef` objects."""

    def resolve(self, pid: Any) -> StorageRef:
        raise _refuse("a persistent id in a plain pickle")


class RestrictedUnpickler(pickle.Unpickler):
    """An ``Unpickler`` whose ``find_class`` admits only :data:`ALLOWED_GLOBALS` and whose
    ``persistent_load`` rebuilds plain storages of the torch file being read (nothing else)."""

    def __init__(self, file: BinaryIO, storages: _Storages | None = None) -> None:
        super().__init__(file)
        self._storages = storages or _Storages()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except (KeyError, TypeError):
            raise _refuse(
                f"the file asks for {str(module)[:80]}.{str(name)[:80]}, which is not one of the "
                "classes an official NAS-Bench-201 / NATS-Bench file needs"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        return self._storages.resolve(pid)


def load(file: BinaryIO) -> Any:
    """Unpickle a plain (no persistent ids) pickle through :class:`RestrictedUnpickler`."""
    return RestrictedUnpickler(file).load()


def loads(data: bytes) -> Any:
    """:func:`load` from bytes."""
    return load(io.BytesIO(data))


def _storage_type(v: Any) -> tuple[str, np.dtype]:
    if not isinstance(v, _Guard) or not isinstance(v.payload, np.dtype):
        raise _refuse(f"a storage of type {v!r}")
    return v._name.rsplit(".", 1)[-1], v.payload


def _typename(pid: Any, length: int) -> None:
    if not isinstance(pid, tuple) or not pid:
        raise _refuse(f"a persistent id of type {type(pid).__name__}")
    kind = pid[0].decode("ascii", "replace") if isinstance(pid[0], bytes) else pid[0]
    if kind == "module":
        raise _refuse("a pickled torch module (source code) in a results file")
    if kind != "storage" or len(pid) != length:
        raise _refuse(f"a persistent id {str(kind)[:40]!r} of {len(pid)} fields")


_KEY = re.compile(r"[0-9A-Za-z_]{1,64}")


class _ZipStorages(_Storages):
    def __init__(self, src: Source, zf: zipfile.ZipFile, prefix: str) -> None:
        self.src, self.zf, self.prefix = src, zf, prefix
        self.seen: dict[str, StorageRef] = {}

    def resolve(self, pid: Any) -> StorageRef:
        _typename(pid, 5)
        _, stype, key, location, numel = pid
        tt, dtype = _storage_type(stype)
        if not isinstance(key, str) or not _KEY.fullmatch(key) or not isinstance(location, str):
            raise _refuse("a storage key or location that is not a short name")
        if type(numel) is not int or numel < 0:
            raise _refuse(f"a storage of {numel!r} elements")
        if key in self.seen:
            ref = self.seen[key]
            if ref.dtype != dtype or ref.numel != numel:
                raise _refuse(f"storage {key} used with two different types or sizes")
            return ref
        member = f"{self.prefix}data/{key}"
        try:
            info = self.zf.getinfo(member)
        except KeyError:
            raise _refuse(f"a storage {key} with no data record") from None
        if numel * dtype.itemsize > info.file_size:
            raise _refuse(
                f"storage {key} claims {numel} elements ({numel * dtype.itemsize} bytes) "
                f"but its record holds {info.file_size} bytes"
            )
        ref = self.seen[key] = StorageRef(self.src, member, dtype, numel, tt)
        return ref


class _LegacyStorages(_Storages):
    def __init__(self, src: Source) -> None:
        self.src = src
        self.roots: dict[str, StorageRef] = {}

    def resolve(self, pid: Any) -> StorageRef:
        _typename(pid, 6)
        _, stype, key, location, numel, view = pid
        tt, dtype = _storage_type(stype)
        if not isinstance(key, str) or not _KEY.fullmatch(key) or not isinstance(location, str):
            raise _refuse("a storage key or location that is not a short name")
        if type(numel) is not int or numel < 0:
            raise _refuse(f"a storage of {numel!r} elements")
        root = self.roots.get(key)
        if root is None:
            root = self.roots[key] = StorageRef(self.src, None, dtype, numel, tt)
        elif root.dtype != dtype or root.numel != numel:
            raise _refuse(f"storage {key} used with two different types or sizes")
        if view is None:
            return root
        # (view_key, offset, size): torch < 1.? saved views of a storage separately
        if not (isinstance(view, tuple) and len(view) == 3):
            raise _refuse("a storage view that is not (key, offset, size)")
        _, off, size = view
        if type(off) is not int or type(size) is not int or off < 0 or size < 0:
            raise _refuse("a storage view with a bad offset or size")
        if off + size > numel:
            raise _refuse(f"a storage view past the end of storage {key}")
        return _ViewStorage(root, off, size)

    def place(self, f: BinaryIO, keys: Any, file_size: int) -> None:
        """Locate the raw storages that follow the pickles, checking every size claim."""
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise _refuse("a storage key list that is not a list of names")
        if set(keys) != set(self.roots) or len(keys) != len(self.roots):
            raise _refuse("storage keys that do not match the storages the pickle uses")
        for key in keys:
            root = self.roots[key]
            head = f.read(8)
            if len(head) != 8:
                raise BenchError(f"storage {key}: the file ends before its data")
            (count,) = struct.unpack("<q", head)
            if count != root.numel:
                raise _refuse(f"storage {key} holds {count} elements, the pickle says {root.numel}")
            root.offset = f.tell()
            end = root.offset + count * root.dtype.itemsize
            if end > file_size:
                raise BenchError(f"storage {key}: its {count} elements run past the end of file")
            f.seek(end)


class _ViewStorage(StorageRef):
    __slots__ = ("first", "root")

    def __init__(self, root: StorageRef, first: int, numel: int) -> None:
        super().__init__(root.src, None, root.dtype, numel, root.torch_type)
        self.root, self.first = root, first

    def read(self, first: int, count: int) -> np.ndarray:
        return self.root.read(self.first + first, count)


_ZIP_ALLOWED = re.compile(
    r"(data\.pkl|version|\.format_version|\.storage_alignment|byteorder|"
    r"\.data/serialization_id|\.data/version|data/[0-9A-Za-z_]{1,64})"
)


def _load_zip(src: Source) -> Any:
    with _open(src) as fz, zipfile.ZipFile(fz) as zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        pkl = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if any(n.endswith("constants.pkl") or "/code/" in f"/{n}" for n in names):
            raise _refuse("a TorchScript archive (constants.pkl / code/), not a results file")
        if len(pkl) != 1:
            raise _refuse("a zip without exactly one <archive>/data.pkl (not a torch.save file)")
        prefix = pkl[0][: -len("data.pkl")]
        for info in infos:
            rel = info.filename[len(prefix) :]
            if not info.filename.startswith(prefix) or not _ZIP_ALLOWED.fullmatch(rel):
                raise _refuse(f"unexpected zip entry {info.filename[:120]!r} in a torch.save file")
            if info.compress_type != zipfile.ZIP_STORED:
                raise _refuse(
                    f"compressed zip entry {info.filename[:120]!r} (torch never writes one)"
                )
        if f"{prefix}byteorder" in names and zf.read(f"{prefix}byteorder") != b"little":
            raise BenchError("big-endian torch files are not supported")
        with zf.open(pkl[0]) as f:
            return RestrictedUnpickler(f, _ZipStorages(src, zf, prefix)).load()


def _load_legacy(src: Source) -> Any:
    size = src.stat().st_size if isinstance(src, Path) else len(src)
    with _open(src) as f:
        try:
            magic = load(f)
        except BenchError:
            raise
        except Exception:
            magic = None
        if magic != LEGACY_MAGIC:
            raise BenchError("not a torch-saved file (neither the zip nor the legacy format)")
        if load(f) != LEGACY_PROTOCOL:
            raise BenchError("unsupported legacy torch protocol version")
        sys_info = load(f)
        if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
            raise BenchError("big-endian torch files are not supported")
        storages = _LegacyStorages(src)
        obj = RestrictedUnpickler(f, storages).load()
        storages.place(f, load(f), size)
        return obj


@contextlib.contextmanager
def memory_budget(input_bytes: int) -> Iterator[None]:
    """Cap the process's address space at its current size plus the load budget of
    ``input_bytes`` while the block runs (Linux; elsewhere a no-op). Nested uses keep the
    outer, tighter limit."""
    try:
        import resource

        with open("/proc/self/statm") as f:
            used = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (ImportError, OSError, ValueError, IndexError):
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    want = used + max(LOAD_MIN_BUDGET, LOAD_BUDGET_RATIO * input_bytes)
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    if soft != resource.RLIM_INFINITY and soft <= want:
        yield
        return
    resource.setrlimit(resource.RLIMIT_AS, (want, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _failure(path: Path, what: str, exc: Exception) -> BenchError:
    if isinstance(exc, BenchError):
        return BenchError(f"cannot read {str(path)!r}: {oneline(exc)}")
    if isinstance(exc, MemoryError):
        return BenchError(
            f"cannot read {str(path)!r}: it needs more memory than the load budget "
            "(a crafted or corrupt file?)"
        )
    # any malformed byte: zipfile, struct, pickle, numpy errors
    return BenchError(f"cannot read {str(path)!r} as {what}: {type(exc).__name__}: {oneline(exc)}")


def require_regular_file(path: Path) -> None:
    """Refuse anything but a regular file before it is opened: a named pipe would block the
    import for ever (and a device could stream without end)."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise BenchError(f"cannot read {str(path)!r}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise BenchError(
            f"{str(path)!r} is not a regular file (a named pipe, device or socket); an "
            "official source holds regular files only"
        )


def load_torch_file(path: str | os.PathLike[str]) -> Any:
    """Read a ``torch.save`` file (zip or legacy format) without torch: plain pickled data
    through :class:`RestrictedUnpickler`, tensors as lazy :class:`TensorRef` views. Any problem
    is a one-line :class:`BenchError` naming the file."""
    path = Path(path)
    require_regular_file(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4)
        with memory_budget(path.stat().st_size):
            if head.startswith(b"PK\x03\x04"):
                return _load_zip(path)
            if head[:1] == b"\x80":
                return _load_legacy(path)
        import tarfile

        if tarfile.is_tarfile(path):
            raise BenchError("the tar-era (torch < 0.4) container is not supported")
        raise BenchError("not a torch-saved file (neither the zip nor the legacy format)")
    except Exception as exc:
        raise _failure(path, "a torch-saved file", exc) from None


class _CappedReader:
    """A read-only stream that fails once more than ``limit`` bytes were read (bz2 bombs)."""

    def __init__(self, raw: Any, limit: int) -> None:
        self.raw, self.limit, self.count = raw, limit, 0

    def _take(self, data: bytes) -> bytes:
        self.count += len(data)
        if self.count > self.limit:
            raise BenchError(
                f"decompresses to more than {self.limit} bytes (the cap is "
                f"max({BZ2_MIN_CAP} bytes, {BZ2_MAX_RATIO} x the compressed size))"
            )
        return data

    def read(self, n: int = -1) -> bytes:
        return self._take(self.raw.read(n if n is not None and n >= 0 else self.limit + 1))

    def readline(self) -> bytes:
        return self._take(self.raw.readline(self.limit + 1))

    def peek(self, n: int = 0) -> bytes:
        return self.raw.peek(n)


def load_bz2_pickle(path: str | os.PathLike[str]) -> Any:
    """Read a NATS-Bench ``.pickle.pbz2`` file (a bz2-compressed plain pickle) through
    :class:`RestrictedUnpickler`, decompressing at most ``max(BZ2_MIN_CAP, BZ2_MAX_RATIO x
    compressed size)`` bytes. Any problem is a one-line :class:`BenchError` naming the file."""
    path = Path(path)
    require_regular_file(path)
    try:
        size = path.stat().st_size
        limit = max(BZ2_MIN_CAP, BZ2_MAX_RATIO * size)
        with memory_budget(BZ2_BUDGET_RATIO * size), bz2.BZ2File(path, "rb") as f:
            obj = load(_CappedReader(f, limit))  # type: ignore[arg-type]
            if f.read(1):
                raise BenchError("data after the end of the pickle")
            return obj
    except Exception as exc:  # truncated or non-bz2 data, garbage pickles, bombs
        raise _failure(path, "a bz2 pickle", exc) from None


def as_state(obj: Any) -> Any:
    """The plain ``state_dict`` form of an official result (dict or stand-in object)."""
    if isinstance(obj, OfficialObject):
        return dict(obj.__dict__)
    return obj

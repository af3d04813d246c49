"""What every resumable checkpoint shares: the run's identity, read back safely.

A checkpoint stores the identity of the run that wrote it (architecture, network shape,
dataset, split sizes, a fingerprint of the data, recipe, seed, ...). Resuming compares it
field by field with the identity of the run asking to resume and refuses any difference,
naming the fields: continuing another run's weights would silently report a mixture.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from nasforge.data import DatasetSplits
from nasforge.errors import CheckpointError
from nasforge.io import to_jsonable

#: Bytes sampled per image for the fingerprint: enough that a different image (or a
#: different order) changes it, cheap for 50k CIFAR images (a few MB touched).
_BYTES_PER_IMAGE = 64


def data_fingerprint(data: DatasetSplits) -> str:
    """A short hash of a dataset setting's content: constants, split names and shapes, all
    labels and a fixed sample of every image's bytes.

    Two loads of the same setting give the same fingerprint; another split, ``limit``,
    order or data directory almost surely gives another one.
    """
    if hasattr(data, "fingerprint"):
        return str(data.fingerprint())  # data of other tasks say what identifies them
    if not hasattr(data, "num_classes") and hasattr(data, "summary"):
        # another task's data without a fingerprint: its name and split sizes
        h = hashlib.blake2b(digest_size=12)
        h.update(json.dumps(to_jsonable([data.name, data.summary()])).encode())
        return h.hexdigest()
    h = hashlib.blake2b(digest_size=12)
    head = [data.name, data.num_classes, data.resolution, data.mean, data.std, data.pad, data.flip]
    h.update(json.dumps(to_jsonable(head)).encode())
    for name, split in [("train", data.train), *data.evals.items()]:
        h.update(f"|{name}:{tuple(split.images.shape)}|".encode())
        h.update(split.labels.detach().cpu().contiguous().numpy().tobytes())
        flat = split.images.detach().cpu().reshape(len(split), -1)
        if flat.shape[0] and flat.shape[1]:
            step = max(1, flat.shape[1] // _BYTES_PER_IMAGE)
            h.update(flat[:, ::step].contiguous().numpy().tobytes())
    return h.hexdigest()


def model_fingerprint(model: torch.nn.Module) -> str:
    """A short hash of a model's structure: the names, shapes and dtypes of its parameters
    and buffers (not their values), so another arch or width changes it."""
    h = hashlib.blake2b(digest_size=12)
    for name, t in model.state_dict().items():
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
    return h.hexdigest()


def resume_path(checkpoint_dir: str | Path | None, name: str) -> Path:
    """The checkpoint file ``name`` to resume from in ``checkpoint_dir``; a
    :class:`CheckpointError` when there is none (resuming never silently starts afresh)."""
    if checkpoint_dir is None:
        raise CheckpointError("resuming needs a checkpoint directory")
    path = Path(checkpoint_dir) / name
    if not path.is_file():
        where = "does not exist" if not Path(checkpoint_dir).exists() else f"holds no {name}"
        raise CheckpointError(
            f"nothing to resume: checkpoint directory {checkpoint_dir} {where}; "
            "run without resume to start afresh"
        )
    return path


def _load_failure(exc: BaseException) -> str:
    """The gist of a ``torch.load`` failure, without torch's advice to retry with
    ``weights_only=False`` (which would run whatever code the file holds)."""
    text = str(exc).strip()
    if "WeightsUnpickler error:" in text:
        detail = text.split("WeightsUnpickler error:", 1)[1].strip().splitlines()
        return "not a torch file of tensors and plain data" + (f": {detail[0]}" if detail else "")
    if isinstance(exc, EOFError) or not text:
        return f"empty or truncated: {type(exc).__name__}"
    return text.split(". ")[0].splitlines()[0][:200]


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by nasforge, safely: ``weights_only`` admits tensors and
    plain containers only, so a crafted file runs no code. Unreadable, truncated or foreign
    files raise :class:`CheckpointError`."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged files
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({_load_failure(exc)}); delete it to start afresh"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a nasforge checkpoint (it holds {type(state)})")
    return state


@contextlib.contextmanager
def restoring(path: str | Path) -> Iterator[None]:
    """Context for restoring state from a loaded checkpoint: a missing key or a tensor of
    the wrong shape (a damaged or hand-made file) becomes a :class:`CheckpointError`."""
    try:
        yield
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as exc:
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise CheckpointError(
            f"checkpoint {path} is damaged ({type(exc).__name__}: {detail}); delete it to "
            "start afresh"
        ) from None


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    else:
        out[prefix] = value
    return out


_ABSENT = object()


def _show(value: Any) -> str:
    text = "(absent)" if value is _ABSENT else repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def identity_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``"field: <saved> in the checkpoint, <current> now"`` for every differing field;
    nested dicts (the recipe) are compared per leaf (``recipe.epochs``)."""
    a = _flatten(to_jsonable(saved), "", {})
    b = _flatten(to_jsonable(current), "", {})
    return [
        f"{k}: {_show(a.get(k, _ABSENT))} in the checkpoint, {_show(b.get(k, _ABSENT))} now"
        for k in sorted(set(a) | set(b))
        if a.get(k, _ABSENT) != b.get(k, _ABSENT)
    ]


def check_identity(path: str | Path, saved: Any, current: dict[str, Any]) -> None:
    """Refuse to resume from ``path`` unless its stored identity ``saved`` equals
    ``current``: a one-line :class:`CheckpointError` lists the differing fields."""
    if not isinstance(saved, dict):
        raise CheckpointError(
            f"cannot resume from {path}: it stores no run identity (written by an older "
            "nasforge?); delete it or use another directory to start afresh"
        )
    diffs = identity_differences(saved, current)
    if diffs:
        raise CheckpointError(
            f"cannot resume from {path}: it belongs to another run ({'; '.join(diffs)}); "
            "use another directory, or the same settings"
        )

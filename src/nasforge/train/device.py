"""Validating a requested torch device before any work starts."""

from __future__ import annotations

import platform

import torch

from nasforge.errors import NasforgeError


def resolve_device(
    device: str | torch.device, error: type[NasforgeError] = NasforgeError
) -> torch.device:
    """``device`` as a :class:`torch.device`, checked to be usable on this machine.

    A malformed name (``"gpu"``), CUDA without CUDA, or a CUDA index beyond the visible
    devices raises ``error`` (a :class:`NasforgeError` subclass, e.g. ``SearchError``)
    naming the device, instead of a raw torch ``RuntimeError`` deep inside a run.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise error(
            f"device {device!r} invalid ({exc}); expected e.g. 'cpu', 'cuda' or 'cuda:0'"
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise error(f"device {str(dev)!r} requested but CUDA is not available; use 'cpu'")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise error(
                f"device {str(dev)!r} requested but only {count} CUDA device(s) are visible"
            )
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise error(f"device {str(dev)!r} requested but MPS is not available; use 'cpu'")
    return dev


def cpu_model() -> str:
    """The CPU's model name as ``lscpu`` shows it (Linux ``/proc/cpuinfo``), else the
    platform's processor string: what benchmark figures name as their machine."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def narrow_strided_pointwise(model: torch.nn.Module) -> list[str]:
    """Names of the 1x1 convolutions with a stride above 1 in ``model``.

    oneDNN's channels_last weight-gradient kernel for a 1x1 stride-2 convolution with
    fewer than 8 input channels writes past its buffer on AVX2 CPUs (uxlfoundation/oneDNN
    #6035: heap corruption, or a hang with several threads). Reproduced here on an AVX2
    EPYC for 3, 4 and 6 input channels; 3x3 convolutions and stride 1 are unaffected, and
    contiguous (NCHW) tensors never hit it. Slimmable networks run such a conv narrower
    than its declared ``in_channels``, so every strided 1x1 conv counts, whatever its width.
    """
    names = []
    for name, m in model.named_modules():
        weight = getattr(m, "weight", None)
        stride = getattr(m, "stride", None)
        if (
            isinstance(weight, torch.Tensor)
            and weight.dim() == 4
            and tuple(weight.shape[2:]) == (1, 1)
            and stride is not None
            and any(int(s) > 1 for s in (stride if isinstance(stride, tuple) else (stride,)))
        ):
            names.append(name)
    return names


def default_channels_last(model: torch.nn.Module, device: str | torch.device) -> bool:
    """The memory layout a model trains in when the caller does not choose one.

    CUDA: channels_last (cuDNN's NHWC kernels, with bf16 autocast, are the fast path).
    CPU: channels_last only on x86-64, where it is measured faster for NB201 networks
    (``benchmarks/train_throughput.py``) and DARTS networks (1.26x a training step of the
    DARTS_V2 network at C=16, 8 cells, batch 32, 1 thread), and only for models without a
    strided 1x1 convolution (see :func:`narrow_strided_pointwise`): ResNet shortcuts and
    every slimmable backbone train in NCHW, which is safe on every CPU family. DARTS's
    FactorizedReduce runs its 1x1 convolutions at stride 1 on the subsampled input
    (:class:`~nasforge.nn.ops.SubsampledConv2d`), so DARTS networks qualify. Other CPU
    architectures (aarch64) get NCHW: channels_last is not measured there.
    """
    dev = torch.device(device)
    if any(p.dim() == 5 for p in model.parameters()):
        return False  # channels_last is a rank-4 layout; 3D convolutions (video) have 5-D weights
    if dev.type == "cuda":
        return True
    if dev.type != "cpu":
        return False
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    return not narrow_strided_pointwise(model)


def _nchw_input(module: torch.nn.Module, args: tuple) -> tuple:
    return (args[0].contiguous(), *args[1:])


def to_safe_channels_last(model: torch.nn.Module) -> list[str]:
    """Put ``model`` in channels_last except its strided 1x1 convolutions, which keep
    NCHW weights and get their input made contiguous (NCHW) by a forward pre-hook, so that
    oneDNN never runs the channels_last kernel of uxlfoundation/oneDNN#6035 (see
    :func:`narrow_strided_pointwise`) while every other layer gets the faster layout.
    Returns the names of the layers kept in NCHW. The values computed are the same in
    either layout (up to float summation order)."""
    names = narrow_strided_pointwise(model)
    model.to(memory_format=torch.channels_last)
    for name in names:
        conv = model.get_submodule(name)
        conv.to(memory_format=torch.contiguous_format)
        conv.register_forward_pre_hook(_nchw_input)
    return names


#: BatchNorm layers narrower than this run their CPU kernel on NCHW inside a channels_last
#: network: PyTorch's channels_last BN kernel vectorises over channels, which 4 channels
#: (PC-DARTS' C/K at C=16, K=4) leave mostly idle. At batch 32, 32x32, 4 channels, forward +
#: backward takes 2.2 ms in channels_last, 0.54 ms in NCHW and 1.1 ms converting to NCHW
#: and back; at 8 channels channels_last is as fast as NCHW (AVX2 EPYC, 1 thread,
#: ``benchmarks/oneshot_levers.py --levers narrow_bn``).
NARROW_BN_CHANNELS = 8


def _nchw_output(module: torch.nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
    return out.contiguous(memory_format=torch.channels_last)


def narrow_batchnorms_in_nchw(model: torch.nn.Module) -> list[str]:
    """Make every ``BatchNorm2d`` of ``model`` with fewer than :data:`NARROW_BN_CHANNELS`
    channels compute on an NCHW copy of its input and hand back a channels_last output
    (forward pre-hook and hook); returns their names. The statistics are the same up to
    float summation order."""
    names = []
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.BatchNorm2d) and m.num_features < NARROW_BN_CHANNELS:
            m.register_forward_pre_hook(_nchw_input)
            m.register_forward_hook(_nchw_output)
            names.append(name)
    return names


def prefer_channels_last(model: torch.nn.Module, device: str | torch.device) -> str:
    """Put ``model`` in the fastest layout that is safe on ``device`` and say which:
    ``"channels_last"`` where :func:`default_channels_last` allows it, else on x86-64 CPUs
    ``"safe_channels_last"`` (:func:`to_safe_channels_last`: everything but the strided 1x1
    convolutions), else ``"contiguous"`` (unchanged). Both one-shot supernets (NB201 and
    the DARTS space) qualify for ``"channels_last"``. On CPU the narrow BatchNorms of a
    channels_last model compute in NCHW (:func:`narrow_batchnorms_in_nchw`)."""
    if default_channels_last(model, device):
        model.to(memory_format=torch.channels_last)
        if torch.device(device).type == "cpu":
            narrow_batchnorms_in_nchw(model)
        return "channels_last"
    dev = torch.device(device)
    if (
        dev.type == "cpu"
        and platform.machine().lower() in ("x86_64", "amd64")
        and not any(p.dim() == 5 for p in model.parameters())
    ):
        to_safe_channels_last(model)
        return "safe_channels_last"
    return "contiguous"

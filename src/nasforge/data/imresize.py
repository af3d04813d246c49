"""MATLAB's ``imresize(img, scale, 'bicubic')``: the downscaler of the DIV2K / EDSR protocol.

Every super-resolution benchmark (DIV2K ``LR_bicubic``, Set5/Set14/B100/Urban100 LR
images) was made with MATLAB's ``imresize`` with its default bicubic kernel and
antialiasing. Libraries that resize differently (OpenCV, PyTorch ``interpolate``) give
other LR images and PSNRs that are not comparable with the papers'. This is a
re-implementation from MATLAB's documented algorithm (the one BasicSR re-implements in
``basicsr/utils/matlab_functions.py``, ``calculate_weights_indices`` and ``imresize``):

- Keys' cubic kernel with ``a = -0.5``: ``1.5|x|^3 - 2.5|x|^2 + 1`` on ``|x| <= 1``,
  ``-0.5|x|^3 + 2.5|x|^2 - 4|x| + 2`` on ``1 < |x| <= 2``;
- output pixel ``x`` (1-based) samples the input at ``u = x / s + 0.5 (1 - 1 / s)``
  (pixel centres aligned);
- downscaling (``s < 1``) antialiases: the kernel is stretched to ``k(s d) * s`` and its
  width to ``4 / s`` taps;
- each output's weights are normalised to sum to 1;
- indices outside the image are mirrored with the edge pixel repeated (MATLAB's
  ``[1:n, n:-1:1]`` index table, i.e. numpy's ``symmetric`` padding);
- the image is resized along the height first, then the width (MATLAB's order when the two
  scales are equal), in float64 without rounding in between (as BasicSR does; MATLAB's own
  mex rounds a uint8 image after each dimension, which could not be checked here and moves
  a value by at most one grey level).

:func:`imresize` returns float64; :func:`bicubic_downscale_uint8` rounds and clips to uint8
as an LR image file stores it.
"""

from __future__ import annotations

import math

import numpy as np

from nasforge.errors import DataError


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with ``a = -0.5`` (MATLAB's ``cubic``)."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    inner = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    outer = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return inner + outer


def resize_weights(
    in_length: int, out_length: int, scale: float, antialiasing: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The ``(out_length, taps)`` weights and 0-based input indices (mirrored into range)
    of resizing a line of ``in_length`` pixels by ``scale`` to ``out_length`` pixels."""
    kernel_width = 4.0
    shrink = scale < 1 and antialiasing
    if shrink:
        kernel_width /= scale
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    taps = math.ceil(kernel_width) + 2
    indices = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]
    distance = u[:, None] - indices
    weights = scale * cubic(distance * scale) if shrink else cubic(distance)
    weights = weights / weights.sum(axis=1, keepdims=True)
    # MATLAB's index table [1:n, n:-1:1]: out-of-range indices mirror with the edge repeated.
    table = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    idx = table[np.mod(indices.astype(np.int64) - 1, 2 * in_length)]
    # Columns whose weights are all zero contribute nothing (MATLAB drops them).
    keep = np.any(weights != 0, axis=0)
    return weights[:, keep], idx[:, keep]


def _resize_axis(img: np.ndarray, axis: int, out_length: int, scale: float) -> np.ndarray:
    weights, idx = resize_weights(img.shape[axis], out_length, scale)
    moved = np.moveaxis(img, axis, 0)
    out = np.zeros((out_length, *moved.shape[1:]), dtype=np.float64)
    shape = (out_length,) + (1,) * (moved.ndim - 1)
    for t in range(weights.shape[1]):
        out += weights[:, t].reshape(shape) * moved[idx[:, t]]
    return np.moveaxis(out, 0, axis)


def imresize(img: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB ``imresize(img, scale)`` (bicubic, antialiasing) of an ``(H, W)`` or
    ``(H, W, C)`` array; float64 result, values as given (no clipping or rounding).

    The output size is ``ceil(H * scale) x ceil(W * scale)``, as MATLAB computes it.
    """
    a = np.asarray(img)
    if a.ndim not in (2, 3) or min(a.shape[:2]) < 1:
        raise DataError(f"imresize needs an (H, W) or (H, W, C) image, got shape {a.shape}")
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise DataError(f"imresize scale {scale!r}; expected a finite number > 0")
    a = a.astype(np.float64)
    out_h = math.ceil(a.shape[0] * scale)
    out_w = math.ceil(a.shape[1] * scale)
    return _resize_axis(_resize_axis(a, 0, out_h, scale), 1, out_w, scale)


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Round half away from zero and clip to [0, 255], as MATLAB converts to uint8."""
    return np.clip(np.floor(np.asarray(img, dtype=np.float64) + 0.5), 0, 255).astype(np.uint8)


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right so that height and width are multiples of ``scale`` (the HR
    image an LR image of the benchmark sets was made from)."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def bicubic_downscale_uint8(hr: np.ndarray, scale: int) -> np.ndarray:
    """The LR image of uint8 ``hr`` at integer ``scale``: ``imresize(modcrop(hr), 1/scale)``
    rounded to uint8, as the DIV2K ``LR_bicubic`` files were written."""
    return to_uint8(imresize(modcrop(hr, scale), 1.0 / scale))

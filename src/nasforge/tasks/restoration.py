"""Image restoration: denoising (AWGN) and single-image super-resolution (bicubic x2/x3/x4).

Registered tasks: ``denoise-g15/-g25/-g50`` (grey) and ``denoise-c15/-c25/-c50`` (colour),
additive white Gaussian noise of sigma 15/25/50 on the 0-255 scale; ``sr-x2/-x3/-x4``,
colour images whose LR inputs are MATLAB-bicubic downscales (see
:mod:`nasforge.data.imresize` and :mod:`nasforge.data.restoration` for data and readers).

Metrics as the papers report them:

- outputs are clipped to [0, 1] and rounded to 8 bits before scoring (a saved result
  image; BasicSR's ``tensor2img``), targets are the 8-bit ground truth;
- super-resolution scores the Y channel of BT.601 YCbCr (``16 + (65.481 R + 128.553 G +
  24.966 B) / 255`` on 0-255 values, not rounded: MATLAB ``rgb2ycbcr`` / BasicSR
  ``rgb2ycbcr(y_only=True)``) with ``scale`` pixels shaved from every border;
- denoising scores every channel of the whole image;
- PSNR = ``10 log10(255^2 / MSE)`` per image; SSIM (Wang et al. 2004) with an 11x11
  Gaussian window of sigma 1.5, ``K1 = 0.01``, ``K2 = 0.03``, over the valid region (no
  padding), averaged over channels; both averaged over the images of a split.

tests/test_restoration.py checks both against scikit-image's ``peak_signal_noise_ratio``
and ``structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=255)``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.data.restoration import SOURCES, RestorationData, RestorationLoader, load_restoration
from nasforge.errors import TaskError
from nasforge.tasks.base import LOSS, TASKS, Autocast, Metric, Task

PSNR = Metric(
    "psnr", "dB", higher_is_better=True, fmt="{:.2f}", description="peak signal-to-noise ratio"
)
SSIM = Metric("ssim", "", higher_is_better=True, fmt="{:.4f}", description="structural similarity")
#: BT.601 luma from 0-255 RGB (MATLAB rgb2ycbcr): Y = 16 + (this . RGB) / 255.
_Y_WEIGHTS = (65.481, 128.553, 24.966)


def quantize(x: torch.Tensor) -> torch.Tensor:
    """A [0, 1] image as the 8-bit file it would be saved as, in float64 0-255."""
    return torch.round(x.detach().double().clamp(0, 1) * 255.0)


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """BT.601 Y (16-235) of 0-255 RGB ``(N, 3, H, W)``, as ``(N, 1, H, W)``."""
    w = torch.tensor(_Y_WEIGHTS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return 16.0 + (x * w).sum(1, keepdim=True) / 255.0


def shave(x: torch.Tensor, border: int) -> torch.Tensor:
    """``x`` without ``border`` pixels on each side."""
    return x[..., border:-border, border:-border] if border > 0 else x


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float = 255.0) -> torch.Tensor:
    """PSNR (dB) of each image of ``a`` against ``b`` (``(N, C, H, W)``, MSE over C, H, W);
    ``inf`` for identical images."""
    mse = ((a.double() - b.double()) ** 2).flatten(1).mean(1)
    return 10.0 * torch.log10(data_range**2 / mse)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """The normalised ``size x size`` Gaussian window (float64)."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = 255.0) -> torch.Tensor:
    """SSIM of each image of ``a`` against ``b`` (``(N, C, H, W)``): 11x11 Gaussian window
    sigma 1.5, valid region, mean over channels (BasicSR ``_ssim`` / Wang et al.)."""
    a, b = a.double(), b.double()
    c = a.shape[1]
    win = gaussian_window().to(a.device).expand(c, 1, 11, 11).contiguous()
    if min(a.shape[-2:]) < 11:
        raise TaskError(f"SSIM needs images of at least 11x11 pixels, got {tuple(a.shape[-2:])}")

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, win, groups=c)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )
    return s.flatten(2).mean(2).mean(1)


class RestorationTask(Task):
    """What denoising and super-resolution share: data, batches, loss, metrics.

    ``channels`` 1 (grey) or 3 (colour); ``scale`` 1 for denoising; ``sigma`` the noise
    level (0-255 scale) for denoising; ``y_channel`` / ``border`` how outputs are scored.
    """

    metrics = (PSNR, SSIM, LOSS)
    primary = "psnr"
    train_metrics = ()
    datasets = SOURCES
    default_dataset = "skimage"
    losses = ("l1", "mse")
    #: The criterion :meth:`evaluate` reports as ``loss`` (it is not told the recipe).
    eval_loss = "l1"

    def __init__(self, *, channels: int, scale: int = 1, sigma: float = 0.0) -> None:
        self.channels, self.scale, self.sigma = int(channels), int(scale), float(sigma)
        self.y_channel = self.scale > 1 and self.channels == 3
        self.border = self.scale if self.scale > 1 else 0

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "channels": self.channels,
            "scale": self.scale,
            "sigma": self.sigma,
            "scored_on": "Y (BT.601)" if self.y_channel else "all channels",
            "shave": self.border,
        }

    def load(
        self,
        dataset: str | None = None,
        data_dir: str | Path | None = None,
        *,
        seed: int = 0,
        limit: int | None = None,
        **options: Any,
    ) -> RestorationData:
        if options:
            raise TaskError(f"task {self.name!r} takes no data options {sorted(options)}")
        return load_restoration(
            dataset or self.default_dataset,
            data_dir,
            channels=self.channels,
            scale=self.scale,
            sigma=self.sigma,
            seed=seed,
            limit=limit,
        )

    def network_io(self, data: Any) -> dict[str, Any]:
        return {"in_channels": data.channels, "out_channels": data.channels, "scale": data.scale}

    def loader(
        self,
        data: Any,
        split: str,
        batch_size: int,
        *,
        train: bool,
        seed: int = 0,
        device: str | torch.device = "cpu",
        recipe: Any = None,
        channels_last: bool = False,
    ) -> RestorationLoader:
        return RestorationLoader(data, split, batch_size, train=train, seed=seed, device=device)

    def loss(self, output: Any, y: torch.Tensor, recipe: Any) -> torch.Tensor:
        """L1 (EDSR) or MSE (DnCNN) between the output and the target, per the recipe."""
        kind = getattr(recipe, "loss", self.eval_loss)
        fn = F.l1_loss if kind == "l1" else F.mse_loss
        return fn(output.float(), y)

    def batch_size(self, y: torch.Tensor) -> int:
        return int(y.shape[0])

    def score(
        self, output: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image (PSNR, SSIM) of [0, 1] outputs against [0, 1] targets, as reported."""
        out, ref = quantize(output), quantize(target)
        if self.y_channel:
            out, ref = rgb_to_y(out), rgb_to_y(ref)
        out, ref = shave(out, self.border), shave(ref, self.border)
        return psnr(out, ref), ssim(out, ref)

    @torch.no_grad()
    def evaluate(
        self,
        model: Callable[..., Any],
        loader: Iterable[tuple[Any, Any]],
        *,
        autocast: Autocast | None = None,
    ) -> dict[str, float]:
        if isinstance(model, nn.Module):
            model.eval()
        ctx = autocast or contextlib.nullcontext
        p_sum = s_sum = l_sum = 0.0
        n = 0
        for x, y in loader:
            with ctx():
                out = model(x)
            out = out.float()
            if out.shape != y.shape:
                raise TaskError(
                    f"the network output {tuple(out.shape)} does not match the target {tuple(y.shape)}"
                )
            p, s = self.score(out, y)
            p_sum += float(p.sum())
            s_sum += float(s.sum())
            fn = F.l1_loss if self.eval_loss == "l1" else F.mse_loss
            l_sum += float(fn(out, y)) * int(y.shape[0])
            n += int(y.shape[0])
        if n == 0:
            return {"psnr": math.nan, "ssim": math.nan, "loss": math.nan}
        return {"psnr": p_sum / n, "ssim": s_sum / n, "loss": l_sum / n}


class DenoiseTask(RestorationTask):
    """Additive white Gaussian noise removal (MSE training, as DnCNN)."""

    default_recipe = "restoration-mse"
    eval_loss = "mse"

    def __init__(self, sigma: float, channels: int) -> None:
        super().__init__(channels=channels, scale=1, sigma=sigma)
        kind = "grey" if channels == 1 else "colour"
        self.name = f"denoise-{'g' if channels == 1 else 'c'}{sigma:g}"
        self.description = f"{kind} denoising, AWGN sigma {sigma:g}/255 (PSNR/SSIM, all channels)"


class SuperResolutionTask(RestorationTask):
    """Single-image super-resolution from MATLAB-bicubic LR (L1 training, as EDSR)."""

    default_recipe = "restoration-l1"
    eval_loss = "l1"

    def __init__(self, scale: int) -> None:
        super().__init__(channels=3, scale=scale)
        self.name = f"sr-x{scale}"
        self.description = (
            f"super-resolution x{scale}, MATLAB-bicubic LR (PSNR/SSIM on Y, {scale}-pixel shave)"
        )


for _sigma in (15, 25, 50):
    for _channels, _kind in ((1, "g"), (3, "c")):
        TASKS.register(f"denoise-{_kind}{_sigma}")(lambda s=_sigma, c=_channels: DenoiseTask(s, c))
for _scale in (2, 3, 4):
    TASKS.register(f"sr-x{_scale}")(lambda s=_scale: SuperResolutionTask(s))

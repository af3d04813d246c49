"""Hand-designed restoration networks: FSRCNN, EDSR-baseline style, DnCNN; and bicubic.

- FSRCNN (Dong, Loy & Tang, ECCV 2016): 5x5 conv (d) -> 1x1 shrink (s) -> ``m`` 3x3 convs
  -> 1x1 expand (d) -> 9x9 deconvolution of stride ``scale``, PReLU after every conv;
  defaults d = 56, s = 12, m = 4 (the paper's FSRCNN(56, 12, 4)). ``C`` sets d, ``depth`` m.
- EDSR-baseline style (Lim et al., CVPRW 2017; the EDSR code's ``edsr.py``): 3x3 head,
  ``depth`` residual blocks (conv-ReLU-conv, residual scale 1), a 3x3 conv, the global skip,
  the sub-pixel upsampler (one conv + PixelShuffle for x2/x3, two x2 stages for x4) and a 3x3
  tail; EDSR-baseline is C = 64, depth = 16. The RGB mean shift of EDSR is left out (the
  images here are not DIV2K's statistics).
- DnCNN (Zhang et al., TIP 2017): conv-ReLU, ``depth - 2`` conv-BN-ReLU, conv; predicts the
  noise (residual learning): output = input - net(input). Defaults C = 64, depth = 17
  (DnCNN-S). Denoising only.
- :func:`bicubic_upscale`: MATLAB bicubic upscaling of the LR input, the "Bicubic" row of SR
  tables (no parameters, not trained).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from nasforge.data.imresize import imresize
from nasforge.errors import ArchError
from nasforge.nn.registry import NETWORKS


class FSRCNN(nn.Module):
    def __init__(
        self, in_channels: int, out_channels: int, scale: int, d: int, s: int, m: int
    ) -> None:
        super().__init__()

        def conv(cin: int, cout: int, k: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, k, padding=k // 2), nn.PReLU(cout)]

        layers = conv(in_channels, d, 5) + conv(d, s, 1)
        for _ in range(m):
            layers += conv(s, s, 3)
        layers += conv(s, d, 1)
        self.body = nn.Sequential(*layers)
        self.deconv = nn.ConvTranspose2d(
            d, out_channels, 9, stride=scale, padding=4, output_padding=scale - 1
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.body(x))


class _ResBlock(nn.Module):
    def __init__(self, C: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(C, C, 3, padding=1), nn.ReLU(), nn.Conv2d(C, C, 3, padding=1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class EDSR(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, scale: int, C: int, depth: int) -> None:
        super().__init__()
        self.head = nn.Conv2d(in_channels, C, 3, padding=1)
        self.body = nn.Sequential(
            *(_ResBlock(C) for _ in range(depth)), nn.Conv2d(C, C, 3, padding=1)
        )
        up: list[nn.Module] = []
        stages = [2, 2] if scale == 4 else ([scale] if scale > 1 else [])
        for s in stages:
            up += [nn.Conv2d(C, C * s * s, 3, padding=1), nn.PixelShuffle(s)]
        self.up = nn.Sequential(*up)
        self.tail = nn.Conv2d(C, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        return self.tail(self.up(h + self.body(h)))


class DnCNN(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, C: int, depth: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, C, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(C, C, 3, padding=1, bias=False), nn.BatchNorm2d(C), nn.ReLU()]
        layers.append(nn.Conv2d(C, out_channels, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - self.body(x)


@NETWORKS.register("restoration-baseline")
def baseline_network(
    arch: str,
    *,
    in_channels: int,
    out_channels: int,
    scale: int = 1,
    C: int | None = None,
    depth: int | None = None,
    s: int = 12,
) -> nn.Module:
    """The baseline ``arch`` (``fsrcnn`` / ``edsr`` / ``dncnn``) with width ``C`` and
    ``depth`` (defaults: the papers' -- FSRCNN d=56, m=4; EDSR-baseline 64, 16; DnCNN 64, 17)."""
    for name, v, low in (("C", C, 1), ("depth", depth, 0), ("s", s, 1)):
        if v is not None and (not isinstance(v, int) or v < low):
            raise ArchError(f"{arch} network option {name}={v!r}; expected an int >= {low}")
    if arch == "fsrcnn":
        if scale < 2:
            raise ArchError(
                "fsrcnn is a super-resolution network (scale >= 2); use dncnn to denoise"
            )
        return FSRCNN(in_channels, out_channels, scale, C or 56, s, 4 if depth is None else depth)
    if arch == "edsr":
        return EDSR(in_channels, out_channels, scale, C or 64, 16 if depth is None else depth)
    if arch == "dncnn":
        if scale != 1:
            raise ArchError("dncnn is a denoising network (scale 1); use fsrcnn or edsr for SR")
        d = 17 if depth is None else depth
        if d < 2:
            raise ArchError(f"dncnn depth={d}; expected >= 2")
        return DnCNN(in_channels, out_channels, C or 64, d)
    raise ArchError(f"restoration baseline {arch!r}; expected fsrcnn, edsr or dncnn")


def bicubic_upscale(scale: int) -> nn.Module:
    """MATLAB bicubic upscaling by ``scale`` of a [0, 1] batch (each image on the CPU in
    float64 through :func:`~nasforge.data.imresize.imresize`)."""

    class _Bicubic(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            outs = []
            for img in x.detach().cpu().double().numpy():
                up = imresize(np.transpose(img, (1, 2, 0)), float(scale))
                outs.append(torch.from_numpy(np.ascontiguousarray(np.transpose(up, (2, 0, 1)))))
            return torch.stack(outs).to(x.device, x.dtype)

    return _Bicubic()


__all__ = ["EDSR", "FSRCNN", "DnCNN", "baseline_network", "bicubic_upscale"]

"""Local attention vs (dynamic) depth-wise convolution: three interchangeable blocks and a
small hierarchical network that picks one per stage.

Han et al., "On the Connection between Local Attention and Dynamic Depth-wise Convolution"
(ICLR 2022) rephrase Swin's window attention as a channel-wise locally connected layer and
replace it, inside the same block, by a depth-wise convolution (DWNet) or a dynamic one
whose kernel is predicted from each image (dynamic DWNet). The blocks here follow the
official codes (files at the commits named; line numbers in each docstring):

* ``window_attn`` -- Swin's block (microsoft/Swin-Transformer ``models/swin_transformer.py``
  at f82860b): LN -> (shifted) window multi-head self-attention with a relative position
  bias -> residual; LN -> MLP (GELU) -> residual;
* ``dwconv`` -- DWNet's block (Atten4Vis/DemystifyLocalViT ``models/dwnet.py`` at ce7c0b7):
  1x1 conv -> BN -> ReLU -> k x k depth-wise conv (``k`` = the window size) -> BN -> ReLU
  -> 1x1 conv -> BN -> residual; BN -> MLP -> residual;
* ``dynamic_dwconv`` -- the same with DWNet's ``DynamicDWConv``: global pooling -> 1x1
  conv to C/4 -> BN -> ReLU -> 1x1 conv to C*k*k gives every image its own depth-wise
  kernel. (In the official ``DWBlock.__init__``, ``dwnet.py:71-77``, the ``if/else`` after
  the dynamic branch overwrites it with a static conv whenever ``inhomogeneous`` is false,
  so the released "dynamic" model trains a static kernel; its ``flops()`` counts the
  dynamic one. We build what the paper describes: the dynamic kernel.)

Blocks take and return ``(B, H, W, C)`` tensors, so stages of different kinds chain. Shift:
the second block of each pair shifts by ``window // 2`` (``swin_transformer.py:400``); where
the resolution is not larger than the window there is one window and no shift (``:206-209``).
An even window is allowed (the convolutions then pad ``"same"``, one more row/column after
than before), so a 4x4 window on CIFAR feature maps is a 4x4 depth-wise kernel.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.errors import ArchError
from nasforge.nn.registry import NETWORKS
from nasforge.registry import Registry
from nasforge.spaces.local_stages import BLOCKS, NUM_STAGES


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """``(B, H, W, C)`` -> ``(B * nW, window, window, C)``, windows in row-major order
    (``swin_transformer.py:45-57``). ``H`` and ``W`` must be multiples of ``window``."""
    b, h, w, c = x.shape
    if h % window or w % window:
        raise ArchError(f"a {h}x{w} map does not split into {window}x{window} windows")
    x = x.reshape(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window, window, c)


def window_reverse(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition` (``swin_transformer.py:60-74``)."""
    b = windows.shape[0] // ((h // window) * (w // window))
    x = windows.reshape(b, h // window, w // window, window, window, -1)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, -1)


def relative_position_index(wh: int, ww: int) -> torch.Tensor:
    """``(wh*ww, wh*ww)`` index into the ``(2wh-1)(2ww-1)`` bias table: for tokens ``p, q``
    of a window, ``(dy + wh - 1) * (2ww - 1) + (dx + ww - 1)`` with ``(dy, dx) = p - q``
    (``swin_transformer.py:104-114``)."""
    coords = torch.stack(torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij"))
    flat = coords.flatten(1)  # 2, N
    rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0)  # N, N, 2
    return (rel[..., 0] + wh - 1) * (2 * ww - 1) + (rel[..., 1] + ww - 1)


def shifted_window_mask(h: int, w: int, window: int, shift: int) -> torch.Tensor | None:
    """The ``(nW, N, N)`` additive mask of shifted-window attention: 0 between tokens of
    the same region of the cyclically shifted map, -100 across (``swin_transformer.py:
    222-241``); ``None`` without a shift."""
    if shift == 0:
        return None
    img = torch.zeros(1, h, w, 1)
    cuts = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    label = 0
    for hs in cuts:
        for ws in cuts:
            img[:, hs, ws, :] = label
            label += 1
    regions = window_partition(img, window).reshape(-1, window * window)
    diff = regions.unsqueeze(1) - regions.unsqueeze(2)
    return diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside a window with a learnt relative position bias
    (``swin_transformer.py:77-156``): qkv linear (with bias), scale ``head_dim ** -0.5``,
    bias table ``(2wh-1)(2ww-1) x heads`` initialised N(0, 0.02) (truncated at 2 std),
    softmax, output projection. Input ``(B * nW, N, C)``."""

    def __init__(self, dim: int, window: int, heads: int) -> None:
        super().__init__()
        if heads < 1 or dim % heads:
            raise ArchError(f"{heads} heads must divide the width {dim}")
        self.dim, self.window, self.heads = dim, window, heads
        self.scale = (dim // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        self.register_buffer(
            "relative_position_index", relative_position_index(window, window), persistent=False
        )
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        attn = q @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.reshape(-1)]
        attn = attn + bias.reshape(n, n, -1).permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.reshape(b // nw, nw, self.heads, n, n) + mask[None, :, None]
            attn = attn.reshape(b, self.heads, n, n)
        out = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(out)


class Mlp(nn.Module):
    """Linear -> GELU -> Linear (both codes' ``Mlp``)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwinBlock(nn.Module):
    """Swin's block on a ``(B, H, W, C)`` map (``swin_transformer.py:175-294``)."""

    def __init__(
        self, dim: int, resolution: int, window: int, shift: int, heads: int, mlp_hidden: int
    ) -> None:
        super().__init__()
        if resolution <= window:  # one window covers the map: no shift (:206-209)
            window, shift = resolution, 0
        if resolution % window or not 0 <= shift < window:
            raise ArchError(
                f"window {window} / shift {shift} do not fit a {resolution}x{resolution} map"
            )
        self.resolution, self.window, self.shift = resolution, window, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_hidden)
        self.register_buffer(
            "attn_mask",
            shifted_window_mask(resolution, resolution, window, shift),
            persistent=False,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h, w, c = x.shape
        y = self.norm1(x)
        if self.shift:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
        windows = window_partition(y, self.window).reshape(-1, self.window * self.window, c)
        windows = self.attn(windows, self.attn_mask)
        y = window_reverse(windows.reshape(-1, self.window, self.window, c), self.window, h, w)
        if self.shift:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + y
        return x + self.mlp(self.norm2(x))


def same_padding(kernel_size: int) -> tuple[int, int, int, int]:
    """``F.pad`` widths keeping the size at stride 1: ``k // 2`` for odd ``k`` (DWNet's
    ``padding=window_size // 2``); one more after than before for even ``k``."""
    before, after = (kernel_size - 1) // 2, kernel_size // 2
    return (before, after, before, after)


class DepthwiseConv(nn.Module):
    """A static depth-wise ``k x k`` convolution with bias and "same" padding
    (``dwnet.py:77``: ``nn.Conv2d(dim, dim, window_size, padding=window_size // 2, groups=dim)``)."""

    def __init__(self, dim: int, kernel_size: int) -> None:
        super().__init__()
        self.pad = same_padding(kernel_size)
        self.conv = nn.Conv2d(dim, dim, kernel_size, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, self.pad))


class DynamicDWConv(nn.Module):
    """DWNet's ``DynamicDWConv`` (``dwnet.py:29-54``): a depth-wise ``k x k`` convolution
    whose kernel is predicted per image from its global average, through
    ``1x1 conv (C -> C/reduction, no bias) -> BN -> ReLU -> 1x1 conv (-> C*k*k)``, plus a
    learnt per-channel bias (zeros at init)."""

    def __init__(self, dim: int, kernel_size: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(1, dim // reduction)
        self.dim, self.kernel_size = dim, kernel_size
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv1 = nn.Conv2d(dim, hidden, 1, bias=False)
        self.bn = nn.BatchNorm2d(hidden)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(hidden, dim * kernel_size * kernel_size, 1)
        self.bias = nn.Parameter(torch.zeros(dim))

    def kernels(self, x: torch.Tensor) -> torch.Tensor:
        """The ``(B, C, k, k)`` kernels predicted for the images of ``x``."""
        k = self.kernel_size
        return self.conv2(self.relu(self.bn(self.conv1(self.pool(x))))).reshape(-1, self.dim, k, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        weight = self.kernels(x).reshape(b * c, 1, self.kernel_size, self.kernel_size)
        # all images at once: the batch folded into the channels, one group per (image, C)
        x = F.pad(x.reshape(1, b * c, h, w), same_padding(self.kernel_size))
        out = F.conv2d(x, weight, self.bias.repeat(b), groups=b * c)
        return out.reshape(b, c, h, w)


class DWBlock(nn.Module):
    """DWNet's ``SpatialBlock`` with its ``DWBlock`` (``dwnet.py:57-158``) on a
    ``(B, H, W, C)`` map: the attention replaced by ``1x1 conv -> BN -> ReLU -> depth-wise
    k x k (static or dynamic) -> BN -> ReLU -> 1x1 conv -> BN``, the pre-MLP LayerNorm by a
    BatchNorm. The static depth-wise conv has a bias (``dwnet.py:77``)."""

    def __init__(self, dim: int, kernel_size: int, mlp_hidden: int, dynamic: bool) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(dim, dim, 1, bias=False)
        self.bn0 = nn.BatchNorm2d(dim)
        self.conv: nn.Module = (
            DynamicDWConv(dim, kernel_size) if dynamic else DepthwiseConv(dim, kernel_size)
        )
        self.bn1 = nn.BatchNorm2d(dim)
        self.conv2 = nn.Conv2d(dim, dim, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(dim)
        self.relu = nn.ReLU(inplace=True)
        self.norm = nn.BatchNorm2d(dim)
        self.mlp = Mlp(dim, mlp_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.permute(0, 3, 1, 2)
        y = self.relu(self.bn0(self.conv0(y)))
        y = self.relu(self.bn1(self.conv(y)))
        y = self.bn2(self.conv2(y))
        x = x + y.permute(0, 2, 3, 1)
        z = self.norm(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return x + self.mlp(z)


#: Block name -> factory(dim, resolution, window, shift, heads, mlp_hidden). The names are
#: the options of the ``local-stages`` space (:data:`nasforge.spaces.local_stages.BLOCKS`).
LOCAL_BLOCKS: Registry[nn.Module] = Registry("local block")


@LOCAL_BLOCKS.register("window_attn")
def _window_attn(
    dim: int, resolution: int, window: int, shift: int, heads: int, mlp_hidden: int
) -> nn.Module:
    return SwinBlock(dim, resolution, window, shift, heads, mlp_hidden)


@LOCAL_BLOCKS.register("dwconv")
def _dwconv(
    dim: int, resolution: int, window: int, shift: int, heads: int, mlp_hidden: int
) -> nn.Module:
    # DWNet: kernel size = window size (dwnet.py:72,77); a conv has no windows to shift
    return DWBlock(dim, min(window, resolution), mlp_hidden, dynamic=False)


@LOCAL_BLOCKS.register("dynamic_dwconv")
def _dynamic_dwconv(
    dim: int, resolution: int, window: int, shift: int, heads: int, mlp_hidden: int
) -> nn.Module:
    return DWBlock(dim, min(window, resolution), mlp_hidden, dynamic=True)


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


class PatchMerging(nn.Module):
    """Swin's downsampling (``swin_transformer.py:315-355``): concatenate each 2x2
    neighbourhood (order x0, x1, x2, x3 = (0,0), (1,0), (0,1), (1,1)), LN, linear
    ``4C -> 2C`` without bias."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = [x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]]
        return self.reduction(self.norm(torch.cat(parts, dim=-1)))


class LocalNet(nn.Module):
    """A small Swin / DWNet-style hierarchy whose stages each use one block kind.

    Patch embedding (``patch x patch`` conv, stride ``patch``, then LN, Swin's default
    ``patch_norm``), ``len(blocks)`` stages of ``depth`` blocks at widths ``C * 2**s`` with
    a patch merging between stages, final LN, global average pooling, linear classifier.
    Heads per stage: ``width // head_dim`` (Swin-T: 32 channels per head). The MLP hidden
    width is ``mlp_ratio * width``; with ``match_params`` a convolution block's MLP is
    widened or narrowed so that the block has the parameters of the attention block at
    the same stage (the paper compares the skeletons as they are, where DWNet is lighter
    and dynamic DWNet heavier than Swin; matching is this study's choice). Linear layers
    are initialised N(0, 0.02) truncated, biases 0, LN weight 1 (``swin_transformer.py:571-578``).
    """

    def __init__(
        self,
        blocks: Sequence[str],
        num_classes: int = 10,
        *,
        C: int = 16,
        depth: int = 2,
        window: int = 4,
        patch: int = 2,
        head_dim: int = 16,
        mlp_ratio: float = 4.0,
        image_size: int = 32,
        match_params: bool = False,
    ) -> None:
        super().__init__()
        blocks = tuple(blocks)
        unknown = [b for b in blocks if b not in LOCAL_BLOCKS]
        if not blocks or unknown:
            raise ArchError(
                f"local blocks {list(blocks)} invalid; expected one or more of {LOCAL_BLOCKS.names()}"
            )
        if min(C, depth, window, patch, head_dim, num_classes) < 1 or C % head_dim:
            raise ArchError(
                f"LocalNet needs positive sizes and head_dim dividing C, got C={C}, "
                f"depth={depth}, window={window}, patch={patch}, head_dim={head_dim}"
            )
        res = image_size // patch
        if image_size % patch or res % (2 ** (len(blocks) - 1)):
            raise ArchError(
                f"image size {image_size} with patch {patch} does not halve {len(blocks) - 1} times"
            )
        self.blocks, self.num_classes = blocks, num_classes
        self.patch_embed = nn.Conv2d(3, C, patch, stride=patch)
        self.patch_norm = nn.LayerNorm(C)
        self.stages = nn.ModuleList()
        self.merges = nn.ModuleList()
        dim = C
        for s, kind in enumerate(blocks):
            heads = dim // head_dim
            hidden = int(dim * mlp_ratio)
            if match_params and kind != "window_attn":
                hidden = self._matched_hidden(kind, dim, res, window, heads, hidden)
            stage = [
                LOCAL_BLOCKS.create(
                    kind, dim, res, window, 0 if i % 2 == 0 else window // 2, heads, hidden
                )
                for i in range(depth)
            ]
            self.stages.append(nn.Sequential(*stage))
            if s < len(blocks) - 1:
                self.merges.append(PatchMerging(dim))
                dim, res = 2 * dim, res // 2
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        self.apply(self._init_weights)

    @staticmethod
    def _matched_hidden(kind: str, dim: int, res: int, window: int, heads: int, hidden: int) -> int:
        target = _params(LOCAL_BLOCKS.create("window_attn", dim, res, window, 0, heads, hidden))
        have = _params(LOCAL_BLOCKS.create(kind, dim, res, window, 0, heads, hidden))
        # each hidden unit of the MLP costs 2*dim weights + 1 bias
        return max(1, hidden + round((target - have) / (2 * dim + 1)))

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_norm(self.patch_embed(x).permute(0, 2, 3, 1))
        for s, stage in enumerate(self.stages):
            x = stage(x)
            if s < len(self.merges):
                x = self.merges[s](x)
        return self.head(self.norm(x).mean(dim=(1, 2)))


@NETWORKS.register("local-stages")
def build_local_stages_network(
    arch: Sequence[str],
    *,
    num_classes: int,
    C: int = 16,
    depth: int = 2,
    window: int = 4,
    match_params: bool = False,
) -> LocalNet:
    """The network of a ``local-stages`` arch (one block name per stage) on 32 px images.
    ``match_params=True`` sizes the convolution blocks' MLPs to the attention block's
    parameters (off by default: the published skeletons, where they differ)."""
    if len(arch) != NUM_STAGES or any(b not in BLOCKS for b in arch):
        raise ArchError(f"a local-stages arch is {NUM_STAGES} of {list(BLOCKS)}, got {arch!r}")
    return LocalNet(
        arch,
        num_classes,
        C=int(C),
        depth=int(depth),
        window=int(window),
        match_params=bool(match_params),
    )


def dynamic_kernel_macs(dim: int, kernel_size: int, positions: int) -> float:
    """Multiply-adds of applying a predicted depth-wise kernel (+ its bias) at
    ``positions`` output positions: ``positions * C * (k*k + 1)``."""
    return float(positions * dim * (kernel_size * kernel_size + 1))


def attention_macs(windows: int, tokens: int, dim: int) -> float:
    """Multiply-adds of the two matrix products of window attention, ``q @ k^T`` and
    ``attn @ v``: ``2 * windows * N^2 * C`` (``swin_transformer.py:166-169``)."""
    return float(2 * windows * tokens * tokens * dim)


__all__ = [
    "LOCAL_BLOCKS",
    "DWBlock",
    "DepthwiseConv",
    "DynamicDWConv",
    "LocalNet",
    "Mlp",
    "PatchMerging",
    "SwinBlock",
    "WindowAttention",
    "attention_macs",
    "build_local_stages_network",
    "dynamic_kernel_macs",
    "relative_position_index",
    "same_padding",
    "shifted_window_mask",
    "window_partition",
    "window_reverse",
]

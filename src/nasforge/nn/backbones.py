"""Width-configurable backbones: CIFAR ResNet-20/56, a 32x32 MobileNetV2, NATS-Bench sss.

A backbone is built from a :class:`~nasforge.spaces.width.BackboneSpec` and one width
configuration; every Conv/BN/Linear takes its channel counts from the spec's layer of the
same name, so the module and the analytic cost in ``nasforge.spaces.width`` describe the same
network (tests check FLOPs and params agree with ``nasforge.cost`` exactly).

``build_backbone("resnet20", widths)`` returns a plain standalone ``nn.Module`` with exactly
those channels, for retraining and counting; ``nasforge.nn.slimmable`` wraps the full-width
one as a supernet.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from nasforge.registry import Registry
from nasforge.spaces.width import (
    MOBILENETV2_CIFAR_SETTINGS,
    BackboneSpec,
    LayerSpec,
    backbone_spec,
)

#: Backbone module builders by name; each takes ``(spec, widths)`` and returns an nn.Module.
BACKBONES: Registry[nn.Module] = Registry("backbone")


class _Channels:
    """Resolved (in, out) channel counts of every spec layer for one width configuration."""

    def __init__(self, spec: BackboneSpec, widths: Sequence[int] | None) -> None:
        ch = spec.widths_dict(spec.full_widths if widths is None else widths)
        self.layers: dict[str, LayerSpec] = {layer.name: layer for layer in spec.layers}
        self.io = {n: (ch[l_.cin], ch[l_.cout]) for n, l_ in self.layers.items()}

    def conv(self, name: str, *, padding: int | None = None) -> nn.Conv2d:
        layer = self.layers[name]
        cin, cout = self.io[name]
        groups = cout if layer.kind == "dwconv" else 1
        return nn.Conv2d(
            cin,
            cout,
            layer.kernel,
            stride=layer.stride,
            padding=layer.kernel // 2 if padding is None else padding,
            groups=groups,
            bias=layer.bias,
        )

    def bn(self, name: str) -> nn.BatchNorm2d:
        return nn.BatchNorm2d(self.io[name][1])

    def linear(self, name: str) -> nn.Linear:
        cin, cout = self.io[name]
        return nn.Linear(cin, cout, bias=self.layers[name].bias)


class ConvBN(nn.Module):
    """A conv followed by BN (module names ``conv`` and ``bn``, as the spec names them)."""

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
        super().__init__()
        self.conv = conv
        self.bn = bn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class BasicBlock(nn.Module):
    """ResNet basic block (He et al. 2016): conv3x3-BN-ReLU-conv3x3-BN + shortcut, ReLU."""

    def __init__(self, ch: _Channels, prefix: str) -> None:
        super().__init__()
        self.conv1 = ch.conv(f"{prefix}.conv1")
        self.bn1 = ch.bn(f"{prefix}.bn1")
        self.conv2 = ch.conv(f"{prefix}.conv2")
        self.bn2 = ch.bn(f"{prefix}.bn2")
        self.relu = nn.ReLU(inplace=True)
        if f"{prefix}.shortcut.conv" in ch.layers:
            self.shortcut: nn.Module = ConvBN(
                ch.conv(f"{prefix}.shortcut.conv", padding=0), ch.bn(f"{prefix}.shortcut.bn")
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNetCifar(nn.Module):
    """CIFAR ResNet-(6n+2) with per-layer widths from a spec (see ``spaces.width``)."""

    def __init__(self, spec: BackboneSpec, widths: Sequence[int] | None = None) -> None:
        super().__init__()
        ch = _Channels(spec, widths)
        self.spec_name = spec.name
        self.stem = ConvBN(ch.conv("stem.conv"), ch.bn("stem.bn"))
        n = (int(spec.name.removeprefix("resnet")) - 2) // 6
        self.stages = nn.ModuleList(
            nn.Sequential(*(BasicBlock(ch, f"stages.{s}.{b}") for b in range(n))) for s in range(3)
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = ch.linear("classifier")
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        for stage in self.stages:
            x = stage(x)
        return self.classifier(torch.flatten(self.pool(x), 1))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: [1x1 expand-BN-ReLU6] -> 3x3 depthwise-BN-ReLU6 -> 1x1 project-BN."""

    def __init__(self, ch: _Channels, prefix: str, use_residual: bool) -> None:
        super().__init__()
        if f"{prefix}.expand.conv" in ch.layers:
            self.expand: nn.Module = ConvBN(
                ch.conv(f"{prefix}.expand.conv"), ch.bn(f"{prefix}.expand.bn")
            )
            self.expand_act: nn.Module = nn.ReLU6(inplace=True)
        else:
            self.expand, self.expand_act = nn.Identity(), nn.Identity()
        self.dw = ConvBN(ch.conv(f"{prefix}.dw.conv"), ch.bn(f"{prefix}.dw.bn"))
        self.project = ConvBN(ch.conv(f"{prefix}.project.conv"), ch.bn(f"{prefix}.project.bn"))
        self.act = nn.ReLU6(inplace=True)
        self.use_residual = use_residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.expand_act(self.expand(x))
        out = self.project(self.act(self.dw(out)))
        return x + out if self.use_residual else out


class MobileNetV2Cifar(nn.Module):
    """MobileNetV2 (Sandler et al. 2018) adapted to 32x32 inputs, widths from a spec."""

    def __init__(self, spec: BackboneSpec, widths: Sequence[int] | None = None) -> None:
        super().__init__()
        ch = _Channels(spec, widths)
        self.spec_name = spec.name
        self.stem = ConvBN(ch.conv("stem.conv"), ch.bn("stem.bn"))
        blocks = []
        k = 0
        for _, _, n, _ in MOBILENETV2_CIFAR_SETTINGS:
            for i in range(n):
                # Residual where the original has one: every block of a stage but the first.
                blocks.append(InvertedResidual(ch, f"blocks.{k}", use_residual=i > 0))
                k += 1
        self.blocks = nn.Sequential(*blocks)
        self.head = ConvBN(ch.conv("head.conv"), ch.bn("head.bn"))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = ch.linear("classifier")
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.clamp(self.stem(x), 0, 6)
        x = self.blocks(x)
        x = torch.clamp(self.head(x), 0, 6)
        return self.classifier(torch.flatten(self.pool(x), 1))


def _init_weights(module: nn.Module) -> None:
    # torchvision's ResNet / MobileNetV2 initialisation: Kaiming-normal (fan_out) convs,
    # BN at (1, 0); the Linear keeps PyTorch's default.
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


BACKBONES.register("resnet20")(ResNetCifar)
BACKBONES.register("resnet56")(ResNetCifar)
BACKBONES.register("mobilenetv2")(MobileNetV2Cifar)


@BACKBONES.register("nats-sss")
def _nats_sss(
    spec: BackboneSpec, widths: Sequence[int] | None = None, *, all_projections: bool = False
) -> nn.Module:
    # The benchmark's own network class (xautodl's DynamicShapeTinyNet, same module names).
    from nasforge.nn.nats_sss import NATSSizeNetwork

    ch = spec.widths_dict(spec.full_widths if widths is None else widths)
    return NATSSizeNetwork([ch[g] for g in spec.searchable], spec.num_classes,
                           all_projections=all_projections)  # fmt: skip


def build_from_spec(
    spec: BackboneSpec, widths: Sequence[int] | None = None, *, all_projections: bool = False
) -> nn.Module:
    """The standalone module of ``spec`` at ``widths`` (full width when None).

    ``all_projections``: for a spec with conditional layers (``LayerSpec.when_differ``),
    build every one of them whatever the widths (the slimmable supernet's weights).
    """
    factory: Callable[..., nn.Module] = BACKBONES.get(spec.name)
    if all_projections and spec.conditional:
        return factory(spec, widths, all_projections=True)
    return factory(spec, widths)


def build_backbone(
    name: str,
    widths: Sequence[int] | None = None,
    *,
    num_classes: int = 10,
    resolution: int = 32,
) -> nn.Module:
    """A standalone backbone with exactly the channels ``widths`` (searchable-group order)."""
    spec = backbone_spec(name, num_classes=num_classes, resolution=resolution)
    return build_from_spec(spec, widths)


__all__ = [
    "BACKBONES",
    "BasicBlock",
    "ConvBN",
    "InvertedResidual",
    "MobileNetV2Cifar",
    "ResNetCifar",
    "build_backbone",
    "build_from_spec",
]

"""The fixed NAS-Bench-201 network of one architecture (``TinyNetwork`` + ``InferCell``)."""

from __future__ import annotations

from collections import Counter

import torch
from torch import nn

from nasforge.errors import ArchError
from nasforge.nn.ops import ResNetBasicBlock, build_op
from nasforge.nn.registry import NETWORKS
from nasforge.spaces.nb201 import Arch, stage_layout

__all__ = ["InferCell", "NB201Network", "build_nb201_network", "stage_layout"]


class InferCell(nn.Module):
    """One cell of a fixed arch: node i = sum over edges j->i of op_ji(node j)."""

    def __init__(self, arch: Arch, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.layers = nn.ModuleList()
        self.node_inputs: list[list[int]] = []
        self.node_layers: list[list[int]] = []
        for node in arch.nodes():
            inputs, layer_ids = [], []
            for op, src in node:
                if src == 0:
                    layer = build_op(op, c_in, c_out, stride)
                else:
                    layer = build_op(op, c_out, c_out, 1)
                layer_ids.append(len(self.layers))
                inputs.append(src)
                self.layers.append(layer)
            self.node_inputs.append(inputs)
            self.node_layers.append(layer_ids)
        self.arch = arch
        self.out_dim = c_out
        # Layers that start with a ReLU of a node read by another such layer: the cell
        # applies that ReLU once per node (the same values; one ReLU and one saved
        # activation instead of one per layer). The module tree is unchanged.
        led = [getattr(layer, "leads_with_relu", lambda: False)() for layer in self.layers]
        srcs = [src for inputs in self.node_inputs for src in inputs]
        readers = Counter(src for src, is_led in zip(srcs, led, strict=True) if is_led)
        self.shared_relu = tuple(
            is_led and readers[src] > 1 for src, is_led in zip(srcs, led, strict=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        activated: dict[int, torch.Tensor] = {}
        for layer_ids, inputs in zip(self.node_layers, self.node_inputs, strict=True):
            feature = None
            for li, src in zip(layer_ids, inputs, strict=True):
                if self.shared_relu[li]:
                    r = activated.get(src)
                    if r is None:
                        r = activated[src] = torch.relu(nodes[src])
                    y = self.layers[li].forward_activated(r)
                else:
                    y = self.layers[li](nodes[src])
                feature = y if feature is None else feature + y
            nodes.append(feature)
        return nodes[-1]


class NB201Network(nn.Module):
    """The NAS-Bench-201 macro skeleton around one cell arch.

    3x3 stem conv to C + BN; three stages of N cells (C, 2C, 4C) joined by stride-2 residual
    blocks; final BN + ReLU (``lastact``, which matters for accuracy); global average pool;
    linear classifier. Returns logits; with ``return_features=True`` the official
    ``TinyNetwork.forward`` pair ``(features, logits)`` (xautodl models/cell_infers/
    tiny_network.py: the pooled features before the classifier), for code ported as is.
    """

    def __init__(
        self,
        arch: Arch | str | int,
        C: int = 16,
        N: int = 5,
        num_classes: int = 10,
        *,
        return_features: bool = False,
    ) -> None:
        super().__init__()
        arch = Arch.parse(arch)
        if C < 1 or N < 1 or num_classes < 1:
            raise ArchError(f"C, N, num_classes must be >= 1, got C={C}, N={N}, {num_classes=}")
        self.arch, self.C, self.N, self.num_classes = arch, C, N, num_classes
        self.return_features = return_features
        self.stem = nn.Sequential(nn.Conv2d(3, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        self.cells = nn.ModuleList()
        c_prev = C
        for c_curr, reduction in stage_layout(C, N):
            if reduction:
                cell: nn.Module = ResNetBasicBlock(c_prev, c_curr, 2)
            else:
                cell = InferCell(arch, c_prev, c_curr, 1)
            self.cells.append(cell)
            c_prev = c_curr
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        feature = self.stem(x)
        for cell in self.cells:
            feature = cell(feature)
        return self.global_pooling(self.lastact(feature)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        features = self.forward_features(x)
        logits = self.classifier(features)
        return (features, logits) if self.return_features else logits


@NETWORKS.register("nb201")
def build_nb201_network(arch: Arch, *, num_classes: int, C: int = 16, N: int = 5) -> NB201Network:
    """The NB201 network of ``arch``: width ``C``, ``N`` cells per stage (official: 16, 5)."""
    return NB201Network(arch, C=C, N=N, num_classes=num_classes)

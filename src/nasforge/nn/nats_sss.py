"""The network of a NATS-Bench size-space arch (xautodl's ``DynamicShapeTinyNet``).

The NB201 skeleton with one cell per stage and a channel count per layer: stem conv to
``c0`` + BN, the fixed cell ``c0 -> c0``, a stride-2 residual block ``c0 -> c1``, the cell
``c1 -> c2``, a residual block ``c2 -> c3``, the cell ``c3 -> c4``; then BN + ReLU, global
pooling and the classifier. A cell whose input and output widths differ gets its
input-edge ops built ``c_in -> c_out`` (a skip edge becomes a factorized 1x1 conv), as
in the official ``InferCell``.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from nasforge.errors import ArchError
from nasforge.nn.nb201 import InferCell, NB201Network
from nasforge.nn.ops import FactorizedReduce, ResNetBasicBlock
from nasforge.nn.registry import NETWORKS
from nasforge.spaces.nats_sss import CELL, NUM_LAYERS
from nasforge.spaces.nb201 import Arch


class NATSSizeNetwork(NB201Network):
    """``DynamicShapeTinyNet(channels, CELL, num_classes)``; forward as NB201Network's.

    ``all_projections``: the skip edges of cells 2 and 4 are 1x1 projections even where
    the widths agree (the weights a slimmable supernet needs; not the benchmark's network).
    """

    def __init__(
        self,
        channels: Sequence[int],
        num_classes: int = 10,
        *,
        return_features: bool = False,
        all_projections: bool = False,
    ) -> None:
        nn.Module.__init__(self)
        self.return_features = return_features
        channels = [int(c) for c in channels]
        if len(channels) != NUM_LAYERS or min(channels) < 1 or num_classes < 1:
            raise ArchError(
                f"a nats-sss network needs {NUM_LAYERS} positive channel counts and >= 1 "
                f"class, got {channels}, {num_classes}"
            )
        arch = Arch.parse(CELL)
        self.arch, self.channels, self.num_classes = arch, tuple(channels), num_classes
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels[0], 3, padding=1, bias=False), nn.BatchNorm2d(channels[0])
        )
        self.cells = nn.ModuleList()
        c_prev = channels[0]
        for i, c in enumerate(channels):
            # Layers 1 and 3 are the stride-2 residual blocks between the stages.
            reduction = i % 2 == 1
            cell = ResNetBasicBlock(c_prev, c, 2) if reduction else InferCell(arch, c_prev, c, 1)
            if all_projections and not reduction and i > 0:
                # The slimmable supernet holds the projection of every skip edge that leaves
                # another layer's output (used by the sub-networks whose widths differ there).
                for k, (op, src) in enumerate(e for node in arch.nodes() for e in node):
                    if op == "skip_connect" and src == 0:
                        cell.layers[k] = FactorizedReduce(c_prev, c, 1)
            self.cells.append(cell)
            c_prev = c
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)


@NETWORKS.register("nats-sss")
def build_nats_sss_network(arch: Sequence[int], *, num_classes: int) -> NATSSizeNetwork:
    """The network of a nats-sss arch (5 channel counts)."""
    return NATSSizeNetwork(arch, num_classes=num_classes)


__all__ = ["NATSSizeNetwork", "build_nats_sss_network"]

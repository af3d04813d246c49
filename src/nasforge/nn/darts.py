"""DARTS evaluation networks: ``NetworkCIFAR`` and ``NetworkImageNet`` (mobile setting).

Written from the official definitions (quark0/darts cnn/model.py, identical in PC-DARTS
model.py): the same cells, stems, reduction positions (``layers // 3`` and
``2 * layers // 3``), auxiliary heads and drop-path, so parameter counts match the
official ones exactly (tests/test_nn_darts.py holds the figures).

Two deliberate interface differences, neither changing the function computed:

* ``forward`` returns the logits tensor, or ``(logits, logits_aux)`` when the network is
  training with its auxiliary head on; the official networks always return a pair. So
  the evaluation path and :class:`nasforge.train.Trainer` see plain logits and the
  trainer adds the auxiliary loss when it gets a pair.
* ``NetworkImageNet`` pools globally with an adaptive average pool instead of
  ``AvgPool2d(7)``: identical at the official 224x224 input (a 7x7 final map), and it
  also runs on smaller inputs (tests).
"""

from __future__ import annotations

import torch
from torch import nn

from nasforge.errors import NetworkError
from nasforge.nn.ops import FactorizedReduce, Identity, ReLUConvBN, build_darts_op
from nasforge.nn.registry import NETWORKS
from nasforge.spaces.darts import Genotype


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples with probability ``drop_prob``, scaling the kept ones by 1/keep.

    As the official ``utils.drop_path`` (one Bernoulli draw per sample, broadcast over
    C, H, W), but out of place, and drawn on the tensor's device from torch's default
    generator (which the trainer seeds).
    """
    if drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = torch.empty((x.shape[0], 1, 1, 1), dtype=x.dtype, device=x.device).bernoulli_(keep)
    return x * mask / keep


#: A DARTS network puts reduction cells at layers // 3 and 2 * layers // 3; with fewer than
#: 3 cells the two coincide or fall on cell 0 and the published layout cannot be built.
MIN_CELLS = 3


def check_cells(layers: int) -> int:
    """``layers`` if a DARTS network can have that many cells, else :class:`NetworkError`
    (callers check it before loading data: the build comes after)."""
    if layers < MIN_CELLS:
        raise NetworkError(
            f"a DARTS network needs >= {MIN_CELLS} cells (2 of them are reductions), got {layers}"
        )
    return layers


def reduction_layers(layers: int) -> tuple[int, ...]:
    """Indices of the reduction cells of a ``layers``-cell network, search and evaluation
    alike (quark0/darts model.py:129,185, model_search.py:82)."""
    return tuple(sorted({layers // 3, 2 * layers // 3}))


def cell_inputs(
    c_prev_prev: int, c_prev: int, c: int, reduction_prev: bool, affine: bool = True
) -> tuple[nn.Module, nn.Module]:
    """A DARTS cell's two preprocessing ops (model.py:14-18, model_search.py:31-35): the older
    input is factorized-reduced after a reduction cell, else a 1x1 ``ReLUConvBN``, as is the
    newer one; bias-free as every DARTS convolution (operations.py:28,96-97)."""
    preprocess0: nn.Module = (
        FactorizedReduce(c_prev_prev, c, 2, affine, bias=False)
        if reduction_prev
        else ReLUConvBN(c_prev_prev, c, 1, 1, 0, affine=affine, bias=False)
    )
    return preprocess0, ReLUConvBN(c_prev, c, 1, 1, 0, affine=affine, bias=False)


class Cell(nn.Module):
    """One evaluation cell built from a genotype (model.py:8-60)."""

    def __init__(
        self,
        genotype: Genotype,
        c_prev_prev: int,
        c_prev: int,
        c: int,
        reduction: bool,
        reduction_prev: bool,
    ) -> None:
        super().__init__()
        self.preprocess0, self.preprocess1 = cell_inputs(c_prev_prev, c_prev, c, reduction_prev)
        pairs, concat = genotype.cell(reduction)
        self.reduction = reduction
        self._steps = len(pairs) // 2
        self._concat = concat
        self._indices = tuple(i for _, i in pairs)
        self.multiplier = len(concat)
        # Only edges from the two cell inputs stride in a reduction cell (model.py:36).
        self._ops = nn.ModuleList(
            build_darts_op(op, c, 2 if reduction and i < 2 else 1) for op, i in pairs
        )
        self._skip = tuple(isinstance(op, Identity) for op in self._ops)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        drop = self.training and drop_prob > 0.0
        for step in range(self._steps):
            total = None
            for k in (2 * step, 2 * step + 1):
                h = self._ops[k](states[self._indices[k]])
                if drop and not self._skip[k]:  # identity edges are never dropped
                    h = drop_path(h, drop_prob)
                total = h if total is None else total + h
            states.append(total)
        return torch.cat([states[i] for i in self._concat], dim=1)


class AuxiliaryHead(nn.Module):
    """The auxiliary classifier at 2/3 depth (model.py:63-108).

    CIFAR (8x8 input): 5x5 avg pool stride 3; ImageNet (14x14): stride 2 and, as in the
    official code, no BatchNorm after the 2x2 conv (model.py:98-101 keeps it commented out
    "for consistency with the experiments in the paper").
    """

    def __init__(self, c: int, num_classes: int, imagenet: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReLU(inplace=True),
            nn.AvgPool2d(5, stride=2 if imagenet else 3, padding=0, count_include_pad=False),
            nn.Conv2d(c, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
        ]
        if not imagenet:
            layers.append(nn.BatchNorm2d(768))
        layers.append(nn.ReLU(inplace=True))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class _DartsNetwork(nn.Module):
    """The cell stack shared by both networks; subclasses define the stem."""

    #: Set per epoch by the trainer (DARTS: ``drop_path_prob * epoch / epochs``).
    drop_path_prob: float

    def _build_cells(
        self,
        genotype: Genotype,
        c: int,
        num_classes: int,
        layers: int,
        auxiliary: bool,
        c_stem: tuple[int, int],
        reduction_prev: bool,
        imagenet: bool,
    ) -> None:
        check_cells(layers)
        self.genotype = genotype
        self.init_channels = c
        self._layers = layers
        self._auxiliary = auxiliary
        self.drop_path_prob = 0.0
        c_prev_prev, c_prev = c_stem
        c_curr = c
        self.cells = nn.ModuleList()
        c_aux = c_prev
        for i in range(layers):
            reduction = i in reduction_layers(layers)
            if reduction:
                c_curr *= 2
            cell = Cell(genotype, c_prev_prev, c_prev, c_curr, reduction, reduction_prev)
            reduction_prev = reduction
            self.cells.append(cell)
            c_prev_prev, c_prev = c_prev, cell.multiplier * c_curr
            if i == 2 * layers // 3:
                c_aux = c_prev
        if auxiliary:
            self.auxiliary_head = AuxiliaryHead(c_aux, num_classes, imagenet)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    @property
    def auxiliary(self) -> bool:
        return self._auxiliary

    def _stem(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        s0, s1 = self._stem(x)
        aux_at = 2 * self._layers // 3
        logits_aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == aux_at and self._auxiliary and self.training:
                logits_aux = self.auxiliary_head(s1)
        logits = self.classifier(self.global_pooling(s1).flatten(1))
        if logits_aux is not None:
            return logits, logits_aux
        return logits


class NetworkCIFAR(_DartsNetwork):
    """DARTS's CIFAR network (model.py:111-156): 3x3 stem to ``3C``, ``layers`` cells.

    The published setting is ``C=36, layers=20``; the auxiliary head sits after cell
    ``2 * layers // 3`` and needs at least a 5x5 map there (inputs of 20px or more).
    """

    def __init__(
        self,
        genotype: Genotype,
        C: int = 36,
        num_classes: int = 10,
        layers: int = 20,
        auxiliary: bool = True,
    ) -> None:
        super().__init__()
        c_stem = 3 * C  # stem_multiplier = 3 (model.py:118)
        self.stem = nn.Sequential(
            nn.Conv2d(3, c_stem, 3, padding=1, bias=False), nn.BatchNorm2d(c_stem)
        )
        self._build_cells(
            genotype, C, num_classes, layers, auxiliary, (c_stem, c_stem), False, False
        )

    def _stem(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.stem(x)
        return s, s


class NetworkImageNet(_DartsNetwork):
    """DARTS's ImageNet network, mobile setting (model.py:159-213): ``C=48``, 14 cells.

    Two stems take a 224x224 input to 56x56 (``stem0``: two stride-2 3x3 convs) and
    28x28 (``stem1``); the first cell sees them as a reduced pair.
    """

    def __init__(
        self,
        genotype: Genotype,
        C: int = 48,
        num_classes: int = 1000,
        layers: int = 14,
        auxiliary: bool = True,
    ) -> None:
        super().__init__()
        self.stem0 = nn.Sequential(
            nn.Conv2d(3, C // 2, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(C // 2, C, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C),
        )
        self.stem1 = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.Conv2d(C, C, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C),
        )
        self._build_cells(genotype, C, num_classes, layers, auxiliary, (C, C), True, True)

    def _stem(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s0 = self.stem0(x)
        return s0, self.stem1(s0)


@NETWORKS.register("darts")
def darts_network(
    genotype: Genotype,
    *,
    num_classes: int,
    C: int = 36,
    layers: int = 20,
    auxiliary: bool = True,
    imagenet: bool = False,
) -> NetworkCIFAR | NetworkImageNet:
    """The evaluation network of a genotype (a space's network builder signature):
    ``NetworkCIFAR`` by default, ``NetworkImageNet`` with ``imagenet=True``."""
    net_cls = NetworkImageNet if imagenet else NetworkCIFAR
    return net_cls(genotype, C=C, num_classes=num_classes, layers=layers, auxiliary=auxiliary)

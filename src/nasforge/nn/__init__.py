"""Torch modules built from search-space values."""

from nasforge.nn.nb201 import InferCell, NB201Network
from nasforge.nn.ops import (
    OP_FACTORIES,
    FactorizedReduce,
    Identity,
    Pooling,
    ReLUConvBN,
    ResNetBasicBlock,
    Zero,
    build_op,
)

__all__ = [
    "OP_FACTORIES",
    "FactorizedReduce",
    "Identity",
    "InferCell",
    "NB201Network",
    "Pooling",
    "ReLUConvBN",
    "ResNetBasicBlock",
    "Zero",
    "build_op",
]

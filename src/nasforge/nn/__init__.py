"""Torch modules built from search-space values.

``build_network(space_name, arch, num_classes=...)`` builds the fixed network of an arch of
any space that registered a builder in ``NETWORKS`` (one line in the space's nn module).
"""

from nasforge.nn.darts import NetworkCIFAR, NetworkImageNet, darts_network
from nasforge.nn.nats_sss import NATSSizeNetwork
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
from nasforge.nn.registry import NETWORKS, build_network, network_options
from nasforge.nn.smnas import Detector  # noqa: F401  (registers the smnas builder)

__all__ = [
    "NETWORKS",
    "OP_FACTORIES",
    "FactorizedReduce",
    "Identity",
    "InferCell",
    "NATSSizeNetwork",
    "NB201Network",
    "NetworkCIFAR",
    "NetworkImageNet",
    "Pooling",
    "ReLUConvBN",
    "ResNetBasicBlock",
    "Zero",
    "build_network",
    "build_op",
    "darts_network",
    "network_options",
]

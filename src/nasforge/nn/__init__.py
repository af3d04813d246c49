"""Torch modules built from search-space values.

``build_network(space_name, arch, num_classes=...)`` builds the fixed network of an arch of
any space that registered a builder in ``NETWORKS`` (one line in the space's nn module).
"""

from nasforge.nn import hinas as _hinas  # noqa: F401  (registers the hinas network)
from nasforge.nn import local_blocks as _local_blocks  # noqa: F401  (registers "local-stages")
from nasforge.nn import restoration_baselines as _baselines  # noqa: F401  (restoration-baseline)
from nasforge.nn import trilevel as _trilevel  # noqa: F401  (registers trilevel-sr)
from nasforge.nn.atoms import AtomConv2d, AtomConvFactory, ResNet18, atom_resnet18
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
from nasforge.nn.rev_transformer import RevTransformer
from nasforge.nn.smnas import Detector  # noqa: F401  (registers the smnas builder)
from nasforge.nn.video import PVNASNetwork, PVNASSupernet

__all__ = [
    "NETWORKS",
    "OP_FACTORIES",
    "AtomConv2d",
    "AtomConvFactory",
    "FactorizedReduce",
    "Identity",
    "InferCell",
    "NATSSizeNetwork",
    "NB201Network",
    "NetworkCIFAR",
    "NetworkImageNet",
    "PVNASNetwork",
    "PVNASSupernet",
    "Pooling",
    "ReLUConvBN",
    "ResNet18",
    "ResNetBasicBlock",
    "RevTransformer",
    "Zero",
    "atom_resnet18",
    "build_network",
    "build_op",
    "darts_network",
    "network_options",
]

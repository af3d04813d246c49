"""Suite-wide settings: property tests have no per-example deadline (CI machines are shared
and small), and matplotlib never needs a display."""

from __future__ import annotations

import os

import matplotlib
import pytest
from hypothesis import settings

matplotlib.use("Agg")
os.environ.setdefault("MPLBACKEND", "Agg")

settings.register_profile("nasforge", deadline=None, max_examples=50)
settings.load_profile("nasforge")


@pytest.fixture
def one_torch_thread():
    """One intra-op torch thread for the test, restored after. Tiny networks run fastest
    (and least disturbed by a busy machine) on one thread, and equal thread counts are what
    make CPU training bit-identical across processes (subprocess builds, Ray tasks)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def params_proxy():
    """The ``params`` proxy of every NB201 arch (the analytic count, equal to the proxy),
    charged 0.5 s per query: a cheap zero-cost evaluator for searcher tests."""
    import torch

    from nasforge.cost import arch_cost
    from nasforge.evaluate.zero_cost import ProxyBatch, ZeroCostEvaluator
    from nasforge.spaces.nb201 import NUM_ARCHS, Arch

    batch = ProxyBatch(torch.zeros(2, 3, 32, 32), torch.zeros(2, dtype=torch.int64), 10)
    known = {
        Arch.from_index(i).to_string(): (arch_cost(Arch.from_index(i)).params_m, 0.5)
        for i in range(NUM_ARCHS)
    }
    return ZeroCostEvaluator("params", batch, scores=known)

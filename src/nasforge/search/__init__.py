"""Search algorithms. Black-box searchers speak ask/tell to an Evaluator; one-shot searchers
own a supernet and return a derived arch; width search owns a slimmable supernet.

Adding an algorithm: one file that registers it in ``ALGORITHMS`` + one line below.
"""

from __future__ import annotations

import importlib

from nasforge.search.registry import ALGORITHMS

_ALGORITHM_MODULES: list[str] = [
]

for _name in _ALGORITHM_MODULES:
    importlib.import_module(_name)

__all__ = ["ALGORITHMS"]

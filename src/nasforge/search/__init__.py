"""Search algorithms. Black-box searchers speak ask/tell to an Evaluator; one-shot searchers
own a supernet and return a derived arch; width search owns a slimmable supernet. Each kind
has its registry (:mod:`nasforge.search.registry`): ``BLACKBOX``, ``ONESHOT``, ``WIDTH``.

Adding an algorithm: one file that registers it in its kind's registry + one line below.
"""

from __future__ import annotations

import importlib

from nasforge.search.registry import BLACKBOX, ONESHOT, WIDTH, algorithm_kind

_ALGORITHM_MODULES: list[str] = [
    "nasforge.search.oneshot.darts",
    "nasforge.search.oneshot.gdas",
    "nasforge.search.oneshot.setn",
    "nasforge.search.oneshot.enas",
    "nasforge.search.oneshot.rsps",
    "nasforge.search.oneshot.pcdarts",
    "nasforge.search.oneshot.single_darts",
    "nasforge.search.oneshot.ddpnas",
    "nasforge.search.oneshot.fpnas",
    "nasforge.search.oneshot.bnnas",
    "nasforge.search.oneshot.danas",
    "nasforge.search.blackbox.random_search",
    "nasforge.search.blackbox.rea",
    "nasforge.search.blackbox.reinforce",
    "nasforge.search.blackbox.bohb",
    "nasforge.search.blackbox.local_search",
    "nasforge.search.blackbox.bananas",
    "nasforge.search.blackbox.zc_bananas",
    "nasforge.search.blackbox.zc_local_search",
    "nasforge.search.blackbox.nsga2",
    "nasforge.search.blackbox.mo_rea",
    "nasforge.search.blackbox.rea_scalar",
    "nasforge.search.width.algorithms",
]

for _name in _ALGORITHM_MODULES:
    importlib.import_module(_name)

__all__ = ["BLACKBOX", "ONESHOT", "WIDTH", "algorithm_kind"]

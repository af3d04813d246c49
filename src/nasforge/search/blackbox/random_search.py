"""Random search: every arch drawn uniformly from the space, evaluated at the default fidelity.

As run with NAS-Bench-201 / NATS-Bench (``exps/NATS-algos/random_wo_share.py``: sample a
random arch, ``simulate_train_eval(arch, dataset, hp='12')``, keep the best validation
accuracy until the time budget is spent). Archs are drawn with replacement, like the official
script.
"""

from __future__ import annotations

from nasforge.search.base import Ask, Searcher, Told
from nasforge.search.registry import BLACKBOX


@BLACKBOX.register("random")
class RandomSearch(Searcher):
    """Uniform random sampling."""

    name = "random"

    def _ask(self) -> Ask:
        return Ask(self.space.sample(self.rng))

    def _tell(self, told: Told) -> None:
        pass  # the base class keeps the best-so-far; random search learns nothing

"""BOHB (Falkner et al., ICML 2018) with training epochs as the fidelity, built on Optuna.

Choice of library: Optuna (maintained, already a dependency) provides both halves of BOHB —
a TPE sampler (a Parzen-estimator model like BOHB's KDE; ``multivariate=True`` models the 6
edges jointly as BOHB's multivariate KDE does) and a Hyperband pruner (successive-halving
brackets over the epoch budget). It also has an ask/tell API, so the search is driven step
by step by our loop: ``study.ask()`` starts a trial, each rung's validation accuracy is
reported with ``trial.report(value, step=epochs)``, ``trial.should_prune()`` decides whether
the trial continues to the next rung, and ``study.tell()`` closes it (COMPLETE at the
maximum budget, PRUNED otherwise). The hpbandster package the official scripts use is
unmaintained, and a private re-implementation is what DESIGN.md rules out.

Settings as in the official NB201 / NATS-Bench runs (``exps/NATS-algos/bohb.py``:
``eta=3, min_budget=1, max_budget=12`` epochs of the 12-epoch schedule, ``--num_samples 4
--random_fraction 0.0``): budgets 1, 3, 9, 12 epochs, reduction factor 3, 4 candidates per
acquisition (``n_ei_candidates=4``). Optuna's pruner is asynchronous successive halving: a
trial is stopped at a rung when it is not in the top 1/eta of the trials of its bracket that
reached that rung so far.

Cost accounting: with ``resume=True`` (default) a trial that continues to a higher rung
resumes its training (same seed) and the clock is charged only the extra epochs — the epochs
actually trained. ``resume=False`` charges every rung from scratch with a fresh seed, as the
original BOHB / the official script do (``simulate_train_eval(arch, iepoch=budget-1)``).

The returned arch is the best validation accuracy among the evaluations at the highest
budget reached (the base-class rule; BOHB's incumbent is defined on the largest budget).
"""

from __future__ import annotations

import warnings
from typing import Any

from nasforge.errors import SearchError
from nasforge.search.base import Ask, SearchContext, Searcher, Told
from nasforge.search.registry import ALGORITHMS
from nasforge.spaces.nb201 import EDGES, OPS, Arch


def rung_budgets(min_epochs: int, max_epochs: int, eta: int) -> list[int]:
    """Successive-halving budgets ``min * eta**k`` below ``max``, then ``max`` itself."""
    out = []
    b = min_epochs
    while b < max_epochs:
        out.append(b)
        b *= eta
    out.append(max_epochs)
    return out


@ALGORITHMS.register("bohb")
class BOHB(Searcher):
    """TPE + Hyperband (Optuna) over the 6 edges, epochs as the fidelity."""

    kind = "blackbox"
    name = "bohb"

    def __init__(
        self,
        *,
        seed: int = 0,
        min_epochs: int = 1,
        max_epochs: int | None = None,
        eta: int = 3,
        n_ei_candidates: int = 4,
        n_startup_trials: int = 10,
        multivariate: bool = True,
        resume: bool = True,
    ) -> None:
        super().__init__(seed=seed)
        if min_epochs < 1:
            raise SearchError(f"bohb min_epochs {min_epochs!r} must be >= 1")
        if eta < 2:
            raise SearchError(f"bohb eta {eta!r} must be >= 2")
        self.min_epochs = int(min_epochs)
        self.max_epochs = None if max_epochs is None else int(max_epochs)
        self.eta = int(eta)
        self.n_ei_candidates = int(n_ei_candidates)
        self.n_startup_trials = int(n_startup_trials)
        self.multivariate = bool(multivariate)
        self.resume = bool(resume)
        self.rungs: list[int] = []
        self.study: Any = None
        self._trial: Any = None
        self._arch: Arch | None = None
        self._rung = 0
        self.num_trials = 0
        self.num_pruned = 0

    def _start(self, context: SearchContext) -> None:
        import optuna

        if not context.multi_fidelity:
            raise SearchError(
                "bohb needs results at several epoch budgets (a table with per-epoch "
                "learning curves, or real training); this evaluator answers only at one "
                "fidelity — use random, rea, reinforce or local-search instead"
            )
        available = sorted(context.fidelities)
        top = self.max_epochs if self.max_epochs is not None else available[-1]
        if top not in available or self.min_epochs > top:
            raise SearchError(
                f"bohb budgets {self.min_epochs}..{top} epochs do not fit the evaluator's "
                f"epochs {available[0]}..{available[-1]}"
            )
        self.rungs = rung_budgets(self.min_epochs, top, self.eta)
        missing = [r for r in self.rungs if r not in available]
        if missing:
            raise SearchError(f"bohb rungs {missing} are not answerable; evaluator has {available}")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # multivariate TPE is flagged experimental
            sampler = optuna.samplers.TPESampler(
                seed=self.seed,
                multivariate=self.multivariate,
                n_ei_candidates=self.n_ei_candidates,
                n_startup_trials=self.n_startup_trials,
            )
        pruner = optuna.pruners.HyperbandPruner(
            min_resource=self.min_epochs, max_resource=top, reduction_factor=self.eta
        )
        # a fixed study name: the pruner assigns trials to brackets by hashing
        # "<study_name>_<trial number>", and a generated name would make runs irreproducible
        self.study = optuna.create_study(
            study_name=f"nasforge-bohb-{self.seed}",
            direction="maximize",
            sampler=sampler,
            pruner=pruner,
        )
        self._trial = None

    def _ask(self) -> Ask:
        if self._trial is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                trial = self.study.ask()
                ops = tuple(
                    trial.suggest_categorical(f"{dst}<-{src}", list(OPS)) for dst, src in EDGES
                )
            self._trial, self._arch, self._rung = trial, Arch(ops), 0
            self.num_trials += 1
        assert self._arch is not None
        key = ("bohb", self._trial.number) if self.resume else None
        return Ask(self._arch, fidelity=self.rungs[self._rung], resume_key=key)

    def _tell(self, told: Told) -> None:
        import optuna

        trial = self._trial
        if trial is None or told.arch != self._arch:
            raise SearchError("bohb was told about an arch it did not ask for")
        trial.report(told.valid_acc, step=told.fidelity)
        if self._rung == len(self.rungs) - 1:
            self.study.tell(trial, told.valid_acc)
            self._trial = None
        elif trial.should_prune():
            self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            self.num_pruned += 1
            self._trial = None
        else:
            self._rung += 1

    def config(self) -> dict[str, Any]:
        return {
            "library": "optuna",
            "sampler": "TPESampler",
            "pruner": "HyperbandPruner",
            "rungs": self.rungs,
            "eta": self.eta,
            "n_ei_candidates": self.n_ei_candidates,
            "n_startup_trials": self.n_startup_trials,
            "multivariate": self.multivariate,
            "resume": self.resume,
        }

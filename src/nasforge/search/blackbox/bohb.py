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

Settings as in the official NB201 / NATS-Bench runs (``exps/NAS-Bench-201/BOHB.py`` and
``exps/NATS-algos/bohb.py``: hpbandster ``BOHB(eta=3, min_budget=1, max_budget=12)``,
``--num_samples 4 --random_fraction 0.0``). hpbandster places the successive-halving budgets
at ``max_budget * eta ** -linspace(S-1, 0, S)`` with ``S = -int(log(min/max) / log(eta)) + 1``
(``hpbandster/optimizers/bohb.py``), i.e. 12 * 3^-[2, 1, 0] = 1.33, 4, 12, and the official
worker trains ``iepoch = int(budget) - 1``, so the rungs are 1, 4 and 12 epochs
(:func:`rung_budgets`). The model is used once ``min_points_in_model`` observations exist,
hpbandster's default being ``dims + 1`` = 7 for the 6 edges (``hpbandster/optimizers/
config_generators/bohb.py``), hence ``n_startup_trials=7`` (by default positions + 1 of
whatever categorical space is searched); 4 candidates per acquisition
(``n_ei_candidates=4``), reduction factor 3.

Optuna's Hyperband pruner runs ``floor(log_eta(max/min)) + 1`` brackets (3 here, as
hpbandster's S); bracket ``s`` is asynchronous successive halving whose first decision is
at ``min * eta**s`` epochs, so it can never stop a trial below that. A trial therefore
starts at the first rung of its own bracket (1, 4 or 12 epochs), as a Hyperband bracket
does, instead of paying for low-budget evaluations that cannot change any decision. A
trial is stopped at a rung when it is not in the top 1/eta of the trials of its bracket that
reached that rung so far.

Cost accounting: with ``resume=True`` (default) a trial that continues to a higher rung
resumes its training (same seed) and the clock is charged only the extra epochs — the epochs
actually trained. ``resume=False`` charges every rung from scratch with a fresh seed, as the
original BOHB / the official script do (``iepoch = int(budget) - 1``).

The returned arch is the best validation accuracy among the evaluations at the highest
budget reached (the base-class rule; BOHB's incumbent is defined on the largest budget).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from nasforge.errors import SearchError
from nasforge.search.base import Ask, SearchContext, Searcher, Told, require_bool, require_int
from nasforge.search.registry import BLACKBOX
from nasforge.spaces import CategoricalSpace, get_space, require_categorical


def rung_budgets(min_epochs: int, max_epochs: int, eta: int) -> list[int]:
    """The epoch budgets of hpbandster's successive halving, as the official NB201 worker
    trains them.

    hpbandster (``optimizers/bohb.py``): ``S = -int(log(min / max) / log(eta)) + 1`` budgets
    ``max * eta ** -linspace(S - 1, 0, S)``; the NB201 worker turns a budget into
    ``int(budget)`` epochs (``iepoch = int(budget) - 1``). Budgets that truncate to the same
    epoch count are merged. ``rung_budgets(1, 12, 3) == [1, 4, 12]``.
    """
    if not 1 <= min_epochs <= max_epochs:
        raise SearchError(
            f"bohb budgets need 1 <= min_epochs <= max_epochs, got {min_epochs}, {max_epochs}"
        )
    n = -int(math.log(min_epochs / max_epochs) / math.log(eta)) + 1
    budgets = max_epochs * np.power(float(eta), -np.linspace(n - 1, 0, n))
    out: list[int] = []
    for b in budgets:
        # the float budgets are products of powers of eta: round off 1e-12 noise first
        e = max(1, int(round(float(b), 9)))
        if not out or e > out[-1]:
            out.append(e)
    return out


@BLACKBOX.register("bohb")
class BOHB(Searcher):
    """TPE + Hyperband (Optuna) over the positions of a categorical space (NB201: the 6
    edges, one categorical hyperparameter ``"dst<-src"`` each), epochs as the fidelity."""

    name = "bohb"
    #: the next ask depends on the last outcome (a rung to promote to / a climbing step)
    max_pending = 1

    def __init__(
        self,
        *,
        seed: int = 0,
        min_epochs: int = 1,
        max_epochs: int | None = None,
        eta: int = 3,
        n_ei_candidates: int = 4,
        n_startup_trials: int | None = None,
        multivariate: bool = True,
        resume: bool = True,
    ) -> None:
        super().__init__(seed=seed)
        self.min_epochs = require_int("bohb", "min_epochs", min_epochs, minimum=1)
        self.max_epochs = (
            None if max_epochs is None else require_int("bohb", "max_epochs", max_epochs, minimum=1)
        )
        self.eta = require_int("bohb", "eta", eta, minimum=2)
        self.n_ei_candidates = require_int("bohb", "n_ei_candidates", n_ei_candidates, minimum=1)
        self._n_startup_setting = (
            None
            if n_startup_trials is None
            else require_int("bohb", "n_startup_trials", n_startup_trials, minimum=0)
        )
        self.multivariate = require_bool("bohb", "multivariate", multivariate)
        self.resume = require_bool("bohb", "resume", resume)
        self.rungs: list[int] = []
        self.study: Any = None
        self._trial: Any = None
        self._arch: Any = None
        self.categorical: CategoricalSpace | None = None
        self._rung = 0
        self.num_trials = 0
        self.num_pruned = 0
        #: per trial number, the index of the rung it started at (its bracket's first)
        self.start_rung: dict[int, int] = {}

    def _start(self, context: SearchContext) -> None:
        import optuna

        self.categorical = require_categorical(context.space, "bohb")
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
        self._arch = None
        self._rung = 0
        self.num_trials = 0
        self.num_pruned = 0
        self.start_rung = {}

    @property
    def n_startup_trials(self) -> int:
        """Random trials before TPE models: the setting, else hpbandster's
        ``min_points_in_model`` default ``dims + 1`` (7 for NB201's 6 edges)."""
        if self._n_startup_setting is not None:
            return self._n_startup_setting
        space = self.categorical or require_categorical(get_space(), "bohb")
        return len(space.choices()) + 1

    def _first_rung(self, trial: Any) -> int:
        """Index of the first rung of ``trial``'s Hyperband bracket.

        Bracket ``s`` of Optuna's pruner first compares trials at ``min * eta**s`` epochs
        (``SuccessiveHalvingPruner(min_early_stopping_rate=s)``); anything evaluated below
        that could never stop the trial. Optuna assigns the bracket by a hash of the study
        name and trial number but has no public accessor, hence the private calls (checked
        by a test, so an Optuna change fails loudly rather than silently charging rungs).
        """
        pruner = self.study.pruner
        if not pruner._pruners:
            pruner._try_initialization(self.study)
        bracket = pruner._get_bracket_id(self.study, trial)
        first_step = self.min_epochs * self.eta**bracket
        for i, r in enumerate(self.rungs):
            if r >= first_step:
                return i
        return len(self.rungs) - 1

    def _ask(self) -> Ask:
        if self._trial is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                trial = self.study.ask()
                assert self.categorical is not None
                choices = self.categorical.choices()
                picks = [
                    c.options.index(trial.suggest_categorical(c.name, list(c.options)))
                    for c in choices
                ]
            first = self._first_rung(trial)
            arch = self.categorical.from_choices(picks)
            self._trial, self._arch, self._rung = trial, arch, first
            self.start_rung[trial.number] = first
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

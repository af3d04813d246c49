"""Width search: slimmable supernets (fixed or CafeNet sharing), evolutionary search under a
FLOPs budget or latency target, AOWS (latency-optimal widths), and the search / retrain /
compare protocol of ``nasforge width``."""

from nasforge.search.width.algorithms import (
    SEARCH_BY_SHARING,
    CafeNetSearch,
    FixedWidthSearch,
    UniformWidth,
    WidthSearch,
    WidthSearchResult,
    uniform_for_budget,
)
from nasforge.search.width.aows import AOWSSearch, AOWSSettings
from nasforge.search.width.evolution import EvolutionResult, EvolutionSettings, evolve
from nasforge.search.width.supernet import (
    Score,
    SupernetLog,
    SupernetScorer,
    SupernetSettings,
    sandwich_widths,
    train_supernet,
)

__all__ = [
    "SEARCH_BY_SHARING",
    "AOWSSearch",
    "AOWSSettings",
    "CafeNetSearch",
    "EvolutionResult",
    "EvolutionSettings",
    "FixedWidthSearch",
    "Score",
    "SupernetLog",
    "SupernetScorer",
    "SupernetSettings",
    "UniformWidth",
    "WidthSearch",
    "WidthSearchResult",
    "evolve",
    "sandwich_widths",
    "train_supernet",
    "uniform_for_budget",
]

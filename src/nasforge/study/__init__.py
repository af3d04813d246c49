"""Studies of search methods (``nasforge study ...``): the weight-sharing ranking study."""

from nasforge.study.ranking import RankingConfig, kendall_tau, run_ranking_study, spearman_rho

__all__ = ["RankingConfig", "kendall_tau", "run_ranking_study", "spearman_rho"]

"""Plots and result files of every kind of search, one module per family.

* :mod:`nasforge.report.search`: black-box runs and comparisons (curves, trajectories,
  summaries, the NAS-Bench-201-style table);
* :mod:`nasforge.report.fronts`: multi-objective runs (hypervolume, fronts, ``pareto.*``);
* :mod:`nasforge.report.oneshot`: one-shot searches (the per-epoch search figure);
* :mod:`nasforge.report.width`: width searches and comparisons;
* :mod:`nasforge.report.study`: rank-correlation studies.

The searches compute; these modules only draw and write what they computed, so a search
package never imports matplotlib and a report never changes a number. Import the module of
the family (``from nasforge.report.search import save_search``): this package imports none
of them, so importing one does not load the others (nor torch).
"""

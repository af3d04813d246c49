"""Real inputs for the ``nasforge explore`` tests (HTTP and browser), made once per session.

A full-space synthetic NB201 table (short recipes, 2 seeds) and, next to it, one directory
of each run kind written by the real code: ``nasforge compare --algos random,rea`` (and
its ``rea`` directory alone as a search run), a one-shot DARTS-V1 search and a
``study ranking`` (both tiny), plus a search whose run name and labels hold markup (the XSS
cases). :func:`explore_explorer` opens them once for every test module.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

#: Markup placed in a run directory name and in the labels of its records: the page must
#: show it as text. Each would set window.__xss if it ever ran.
XSS_DIR = "<img src=x onerror=window.__xss=1>"
XSS_ALGO = "<script>window.__xss=2</script>"
XSS_ARCH = '<img src=x onerror="window.__xss=3">'


def _cli(*args: str) -> None:
    from typer.testing import CliRunner

    from nasforge.cli import app

    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="session")
def explore_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``root/`` holding ``table/`` and ``runs/{rea,cmp,oneshot,ranking,XSS_DIR}``."""
    import torch

    from nasforge.bench import make_synthetic_table
    from nasforge.data import load_splits
    from nasforge.search import ONESHOT
    from nasforge.search.oneshot import run_search
    from nasforge.study.ranking import RankingConfig, run_ranking_study

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("explore")
    table = root / "table"
    make_synthetic_table(
        table, datasets=("cifar10-valid",), hps={"12": 4, "200": 6}, seeds=(777, 888)
    )
    runs = root / "runs"
    _cli(
        "compare", "--algos", "random,rea", "--runs", "2", "--budget", "1000s", "--bench",
        str(table), "--dataset", "cifar10-valid", "--quiet", "-o", str(runs / "cmp"),
    )  # fmt: skip
    # compare writes each algorithm's runs with the function `nasforge search -o` writes
    # them with (report.search.save_search): one of them, alone, is a search run directory
    shutil.copytree(runs / "cmp" / "rea", runs / "rea")
    data = load_splits("synthetic-8px-10c", None, seed=0, limit=32)
    tiny = {"C": 4, "N": 1, "batch_size": 16, "eval_batch_size": 32, "valid_batches": 1}
    method = ONESHOT.create("darts-v1", epochs=2, **tiny)
    run_search(method, data, runs / "oneshot", seed=0, plot=False, resume=False)
    run_ranking_study(
        table,
        data,
        runs / "ranking",
        config=RankingConfig(num_archs=8, eval_batches=1, step_every=1, top_k=3),
        supernet={"epochs": 2, **tiny},
        seed=0,
        plot=False,
    )
    torch.set_num_threads(threads)
    # The same search once more, under a name and with labels that hold markup.
    evil = runs / XSS_DIR
    evil.mkdir()
    lines = (runs / "rea" / "trajectories.jsonl").read_text().splitlines()
    out = []
    for line in lines:
        rec = json.loads(line)
        rec["algo"], rec["final_arch"] = XSS_ALGO, XSS_ARCH
        out.append(json.dumps(rec))
    (evil / "trajectories.jsonl").write_text("\n".join(out) + "\n")
    (evil / "summary.json").write_text((runs / "rea" / "summary.json").read_text())
    return root


@pytest.fixture(scope="session")
def explore_explorer(explore_root: Path):
    """The :class:`~nasforge.explore.Explorer` over ``explore_root`` (shared: opening warms
    every cache of the full-size table)."""
    from nasforge.explore import Explorer

    return Explorer([explore_root])

"""Zero-cost search at the speed a proxy promises: analytic cost proxies, scores reused
across runs and commands, the clock charged as if each run had computed them."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch

from nasforge.evaluate.zero_cost import ProxyBatch, compute_proxies
from nasforge.spaces.nb201 import Arch


def _batch(resolution: int, classes: int) -> ProxyBatch:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, resolution, resolution, generator=g)
    return ProxyBatch(x, torch.arange(4) % classes, classes)


@pytest.mark.parametrize(
    ("resolution", "classes", "C", "N"), [(32, 10, None, None), (16, 120, 8, 1)]
)
def test_analytic_cost_proxies_equal_the_built_network_counts(
    resolution, classes, C, N, monkeypatch
) -> None:
    import nasforge.evaluate.zero_cost as Z

    batch = _batch(resolution, classes)
    rng = np.random.default_rng(0)
    archs = [Arch.from_index(int(i)) for i in [0, 15624, *rng.integers(0, 15625, 6).tolist()]]
    slow = [
        compute_proxies(a, ["params", "flops"], batch, C=C, N=N, analytic=False)[0] for a in archs
    ]

    def no_build(*args: Any) -> Any:
        raise AssertionError("an analytic proxy built a network")

    monkeypatch.setattr(Z, "_space_builder", no_build)
    fast = [compute_proxies(a, ["params", "flops"], batch, C=C, N=N)[0] for a in archs]
    assert fast == slow  # the same floats, not merely close


def test_analytic_and_built_proxies_mix_in_the_asked_order() -> None:
    batch = _batch(16, 10)
    arch = Arch.from_index(99)
    got, seconds = compute_proxies(arch, ["synflow", "params"], batch, C=4, N=1)
    want, _ = compute_proxies(arch, ["synflow", "params"], batch, C=4, N=1, analytic=False)
    assert list(got) == ["synflow", "params"] == list(seconds) and got == want


def test_a_custom_builder_is_counted_not_looked_up() -> None:
    from nasforge.nn.nb201 import NB201Network

    built = []

    def build(arch: Any, num_classes: int) -> torch.nn.Module:
        built.append(arch)
        return NB201Network(arch, C=4, N=1, num_classes=num_classes)

    compute_proxies(Arch.from_index(5), ["params"], _batch(16, 10), build=build)
    assert len(built) == 1


# -- nasforge zc rows reused by nasforge search --zc-scores ----------------------------------


@pytest.fixture(scope="module")
def syn_table(tmp_path_factory):
    from nasforge.bench import make_synthetic_table

    return make_synthetic_table(
        tmp_path_factory.mktemp("zccache") / "syn", datasets=("cifar10-valid",), hps={"12": 12}
    )


ZC = ["--zc-dataset", "synthetic-8px", "--zc-batch-size", "4", "--channels", "2", "--cells", "1"]


def _search(table: Any, out: Any, *extra: str) -> Any:
    from typer.testing import CliRunner

    from nasforge.cli import app
    from nasforge.report.search import load_runs

    args = ["search", "--algo", "zc-local-search", "--bench", str(table), "--budget", "600s"]
    args += ["--param", "zc_pool=12", "--zc-proxy", "synflow", *ZC, "--seed", "3", "--runs", "2"]
    res = CliRunner().invoke(app, [*args, "--quiet", "-o", str(out), *extra])
    return res, (load_runs(out / "trajectories.jsonl") if res.exit_code == 0 else None)


def test_search_reuses_zc_rows_with_identical_trajectories(syn_table, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import nasforge.evaluate.zero_cost as Z
    from nasforge.cli import app

    _, fresh = _search(syn_table, tmp_path / "fresh", "--zc-charge", "5")
    # score exactly the archs the runs' proxy pools asked, with the search's settings
    pooled = sorted(
        {
            a
            for r in fresh
            for a, f in zip(r.history["arch"], r.history["fidelity"], strict=True)
            if f == 0
        }
    )
    archs = tmp_path / "archs.txt"
    archs.write_text("\n".join(pooled))
    rows = tmp_path / "rows.csv"
    zc = ["zc", "--proxies", "synflow", "--archs", str(archs), "--dataset", "synthetic-8px"]
    zc += ["--batch-size", "4", "--channels", "2", "--cells", "1", "--seed", "3", "-o", str(rows)]
    res = CliRunner().invoke(app, zc)
    assert res.exit_code == 0, res.output
    assert json.loads(Z.meta_path(rows).read_text())["proxies"] == ["synflow"]

    def no_compute(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a cached score was computed again")

    monkeypatch.setattr(Z, "compute_proxies", no_compute)
    res, cached = _search(
        syn_table, tmp_path / "cached", "--zc-charge", "5", "--zc-scores", str(rows)
    )
    assert res.exit_code == 0, res.output
    assert [r.history for r in cached] == [r.history for r in fresh]
    # every run is charged for its proxy queries, as if it had computed them
    assert all(r.history["cost"][:12] == [5.0] * 12 for r in cached)


def test_zc_rows_of_other_settings_are_refused(syn_table, tmp_path):
    from typer.testing import CliRunner

    from nasforge.cli import app

    rows = tmp_path / "rows.csv"
    zc = ["zc", "--proxies", "synflow", "--archs", "20", "--dataset", "synthetic-8px"]
    zc += ["--batch-size", "8", "--channels", "2", "--cells", "1", "--seed", "3", "-o", str(rows)]
    assert CliRunner().invoke(app, zc).exit_code == 0
    res, _ = _search(syn_table, tmp_path / "s", "--zc-scores", str(rows))
    assert res.exit_code != 0
    assert "other settings: batch_size 8 (search: 4)" in str(res.exception)
    # resuming the rows under other settings would mix two kinds of score
    zc[zc.index("8")] = "4"
    res = CliRunner().invoke(app, zc)
    assert res.exit_code != 0 and "use another output file" in str(res.exception)

"""The Ray executor for real: a local Ray instance (2 CPUs) runs tasks and builds a table."""

from __future__ import annotations

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from nasforge.bench import Benchmark  # noqa: E402
from nasforge.bench.build import BuildConfig, build  # noqa: E402
from nasforge.run import RayExecutor, create_executor  # noqa: E402

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def executor():
    # One Ray start for the whole module: starting Ray costs several seconds.
    ex = create_executor("ray", workers=2)
    yield ex
    ex.shutdown()
    assert not ray.is_initialized()  # the executor started it, so it stopped it


def test_ray_executor_streams_results_and_errors(executor):
    assert isinstance(executor, RayExecutor)
    assert executor.num_workers == 2 and executor.gpus_per_task == 0.0  # no GPU here

    # Nested, so cloudpickle ships it by value: Ray's workers cannot import test modules.
    def fail_on_odd(x: int) -> int:
        if x % 2:
            raise ValueError(f"odd {x}")
        return 10 * x

    outs = {o.index: o for o in executor.map(fail_on_odd, range(5))}
    assert sorted(outs) == [0, 1, 2, 3, 4]
    assert [outs[i].value for i in (0, 2, 4)] == [0, 20, 40]
    assert not outs[3].ok and "ValueError: odd 3" in outs[3].error
    assert outs[0].run_time >= 0


def test_ray_build_matches_local_build(executor, tmp_path, one_torch_thread):
    cfg = BuildConfig(
        dataset="synthetic-16px-4c", seeds=(777, 888), archs=2, limit=48, epochs=1, C=4, N=1
    )
    rep = build(cfg, tmp_path / "ray", executor=executor, progress=False)
    assert (rep.total, rep.ok, rep.failed) == (4, 4, 0)
    assert "RayExecutor" in rep.executor
    bench = Benchmark.open(tmp_path / "ray")
    assert len(bench) == 2
    local = build(cfg, tmp_path / "local", progress=False)
    assert local.ok == 4
    ref = Benchmark.open(tmp_path / "local")
    for arch in ref:
        assert bench.cost(arch, cfg.dataset)["params_m"] == ref.cost(arch, cfg.dataset)["params_m"]
        for seed in cfg.seeds:
            a = bench.query(arch, cfg.dataset, hp="1", seed=seed).curves
            b = ref.query(arch, cfg.dataset, hp="1", seed=seed).curves
            for name in ("train_loss", "train_acc", "valid_loss", "valid_acc", "test_acc"):
                # Same seed, data, code and thread count: the very same training.
                np.testing.assert_array_equal(a[name], b[name], err_msg=name)

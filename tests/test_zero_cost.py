"""Zero-cost proxies: hand-checked values on tiny networks, properties, the evaluator, the CLI.

The tiny networks are plain ``nn.Linear`` stacks, where every proxy has a closed form; the
NB201 checks use a small network (C=4, N=1) except the one comparing against the official
params / FLOPs of a full-size one.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from nasforge.cli import app
from nasforge.cost import arch_cost
from nasforge.errors import NasforgeError, SearchError
from nasforge.evaluate.proxies import PROXIES
from nasforge.evaluate.zero_cost import (
    ProxyBatch,
    WithZeroCost,
    ZeroCostEvaluator,
    compute_proxies,
    parse_proxies,
    proxy_batch,
    read_rows,
)
from nasforge.nn.nb201 import NB201Network
from nasforge.search.base import Ask, Searcher, run_search
from nasforge.spaces.nb201 import Arch

K = 1e-5
ARCH = "|skip_connect~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_1x1~0|nor_conv_1x1~1|none~2|"
# official NB201 figures of ARCH on cifar10 (reference_archs.json: params_m, flops_m)
ARCH_PARAMS_M, ARCH_FLOPS_M = 0.615386, 86.42625


def _linear(w: list[list[float]]) -> nn.Linear:
    t = torch.tensor(w, dtype=torch.float32)
    layer = nn.Linear(t.shape[1], t.shape[0], bias=False)
    with torch.no_grad():
        layer.weight.copy_(t)
    return layer


def _run(name: str, net: nn.Module, x: torch.Tensor, y: torch.Tensor, seed: int = 0) -> float:
    torch.manual_seed(seed)
    return PROXIES.get(name)(net, x, y)


X = torch.tensor([[1.0, -2.0, 0.5], [0.3, 0.7, -1.0], [2.0, 1.0, 1.0], [-1.0, 0.0, 0.4]])
Y = torch.tensor([0, 1, 1, 0])
W1 = [[0.5, -1.0, 0.25], [1.5, 0.5, -0.5]]


def _ce_grad(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """d mean cross-entropy / dW of logits W x, by hand."""
    z = x @ w.T
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(len(y)), y] -= 1.0
    return p.T @ x / len(y)


def test_registry_has_every_proxy_of_the_issue():
    assert set(PROXIES.names()) == {
        "synflow", "snip", "grasp", "grad_norm", "fisher", "jacov", "nwot", "zen",
        "epe_nas", "l2_norm", "plain", "params", "flops",
    }  # fmt: skip


def test_gradient_saliencies_match_hand_computed_values():
    w = np.asarray(W1)
    g = _ce_grad(w, X.numpy().astype(np.float64), Y.numpy())
    assert _run("snip", _linear(W1), X, Y) == pytest.approx(np.abs(w * g).sum(), rel=1e-5)
    assert _run("plain", _linear(W1), X, Y) == pytest.approx((w * g).sum(), rel=1e-5)
    assert _run("grad_norm", _linear(W1), X, Y) == pytest.approx(np.linalg.norm(g), rel=1e-5)
    assert _run("l2_norm", _linear(W1), X, Y) == pytest.approx(np.linalg.norm(w), rel=1e-6)
    # one sample: 3 inputs x 2 outputs multiply-adds, no bias
    assert _run("flops", _linear(W1), X, Y) == pytest.approx(6e-6)
    assert _run("params", _linear(W1), X, Y) == pytest.approx(6e-6)


def test_fisher_is_half_the_mean_squared_act_times_grad_per_channel_times_fan_in():
    w = np.asarray(W1)
    x = X.numpy().astype(np.float64)
    z = x @ w.T
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(4), Y.numpy()] -= 1.0
    dz = p / 4  # d mean loss / d logits
    per_channel = 0.5 * ((z * dz) ** 2).mean(0)
    assert _run("fisher", _linear(W1), X, Y) == pytest.approx(per_channel.sum() * 3, rel=1e-4)


def test_grasp_is_minus_w_times_hessian_gradient_product():
    w0 = torch.tensor(W1, dtype=torch.float64)

    def loss(w):
        return nn.functional.cross_entropy(X.double() @ w.T, Y)

    wv = w0.clone().requires_grad_(True)
    g = torch.autograd.grad(loss(wv), wv)[0]
    hess = torch.autograd.functional.hessian(loss, w0).reshape(6, 6)
    hg = (hess @ g.reshape(6)).reshape(2, 3)
    expected = float((-w0 * hg).sum())
    assert _run("grasp", _linear(W1), X, Y) == pytest.approx(expected, rel=1e-3, abs=1e-7)


def test_synflow_follows_the_conservation_law_and_ignores_the_data():
    # with |weights| and a ones input, each layer of a linear chain carries the whole
    # synaptic flow R = 1^T |W2| |W1| 1 (Tanaka et al. 2020, Thm 1): synflow = 2 R
    w2 = [[1.0, -2.0]]
    net = nn.Sequential(_linear(W1), nn.ReLU(), _linear(w2))
    r = float((np.abs(np.asarray(w2)) @ np.abs(np.asarray(W1)) @ np.ones(3))[0])
    assert _run("synflow", net, X, Y) == pytest.approx(2 * r)
    other = torch.randn(4, 3) * 100
    net2 = nn.Sequential(_linear(W1), nn.ReLU(), _linear(w2))
    assert _run("synflow", net2, other, Y) == pytest.approx(2 * r)


def test_synflow_of_an_nb201_network_is_invariant_to_the_input_data():
    batch = _tiny_batch(seed=0)
    other = ProxyBatch(torch.randn_like(batch.inputs) * 5, batch.targets, batch.num_classes)
    a, _ = compute_proxies(ARCH, ["synflow"], batch, C=4, N=1)
    b, _ = compute_proxies(ARCH, ["synflow"], other, C=4, N=1)
    assert a["synflow"] == b["synflow"] > 0


def test_nwot_is_the_logdet_of_the_hand_made_activation_kernel():
    # three ReLU units with pre-activations (x, -x, x - 1.5): codes for x = 1, -1, 2 are
    # 100, 010, 101 -> agreements K = [[3,1,2],[1,3,0],[2,0,3]], det K = 12
    first = nn.Linear(1, 3)
    with torch.no_grad():
        first.weight.copy_(torch.tensor([[1.0], [-1.0], [1.0]]))
        first.bias.copy_(torch.tensor([0.0, 0.0, -1.5]))
    net = nn.Sequential(first, nn.ReLU(), nn.Linear(3, 2))
    x = torch.tensor([[1.0], [-1.0], [2.0]])
    assert _run("nwot", net, x, torch.tensor([0, 1, 0])) == pytest.approx(math.log(12.0))


def test_jacov_and_epe_nas_of_a_linear_net_follow_from_identical_jacobians():
    # every sample has the same input Jacobian (W^T 1): the correlation matrix is all ones
    n = 4
    eig = np.array([n] + [0] * (n - 1), dtype=float)
    expected = -np.sum(np.log(eig + K) + 1.0 / (eig + K))
    assert _run("jacov", _linear(W1), X, Y) == pytest.approx(expected, rel=1e-6)
    # EPE-NAS: per class sum log(|1| + k) over its n_c x n_c matrix, summed over classes
    expected_epe = sum(nc**2 * math.log(1 + K) for nc in (2, 2))
    assert _run("epe_nas", _linear(W1), X, Y) == pytest.approx(expected_epe, rel=1e-6)


def test_zen_is_the_log_mean_perturbation_of_a_gaussian_network():
    net = _linear(W1)
    torch.manual_seed(5)
    w = torch.randn(2, 3)  # zen redraws the weights from N(0, 1) first, then x and e
    torch.randn(X.shape)
    e = torch.randn(X.shape)
    expected = math.log(float((1e-2 * e @ w.T).abs().sum(1).mean()))
    assert _run("zen", net, X, Y, seed=5) == pytest.approx(expected, rel=1e-4)


def _tiny_batch(seed: int = 0, n: int = 8) -> ProxyBatch:
    gen = torch.Generator().manual_seed(seed)
    return ProxyBatch(torch.randn(n, 3, 8, 8, generator=gen), torch.arange(n) % 3, 10)


def test_proxy_batch_draws_normalised_images_for_a_seed():
    a = proxy_batch("synthetic-8px", batch_size=6, seed=1)
    b = proxy_batch("synthetic-8px", batch_size=6, seed=1)
    c = proxy_batch("synthetic-8px", batch_size=6, seed=2)
    assert a.inputs.shape == (6, 3, 8, 8) and a.inputs.dtype == torch.float32
    assert torch.equal(a.inputs, b.inputs) and not torch.equal(a.inputs, c.inputs)
    assert -3 < float(a.inputs.mean()) < 3 and a.num_classes == 10


@pytest.mark.slow
def test_every_proxy_is_deterministic_for_a_seed_on_an_nb201_network():
    batch = _tiny_batch()
    a, sec = compute_proxies(ARCH, PROXIES.names(), batch, seed=3, C=4, N=1)
    b, _ = compute_proxies(ARCH, PROXIES.names(), batch, seed=3, C=4, N=1)
    assert a.keys() == set(PROXIES.names()) == sec.keys()
    for name in a:
        assert a[name] == b[name] or (math.isnan(a[name]) and math.isnan(b[name])), name
        assert sec[name] > 0
    c, _ = compute_proxies(ARCH, ["snip", "zen"], batch, seed=4, C=4, N=1)
    assert c["snip"] != a["snip"] and c["zen"] != a["zen"]  # the seed sets the weights


@pytest.mark.slow
def test_params_and_flops_equal_the_cost_counter_and_the_official_figures():
    batch = ProxyBatch(torch.zeros(2, 3, 32, 32), torch.tensor([0, 1]), 10)
    s, _ = compute_proxies(ARCH, ["params", "flops"], batch)
    cost = arch_cost(ARCH, "cifar10")
    assert s["params"] == pytest.approx(cost.params_m) == pytest.approx(ARCH_PARAMS_M)
    assert s["flops"] == pytest.approx(cost.flops_m) == pytest.approx(ARCH_FLOPS_M)


def test_proxies_do_not_touch_the_network_they_are_given():
    torch.manual_seed(0)
    net = NB201Network(ARCH, C=4, N=1, num_classes=10)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    compute_proxies(ARCH, ["synflow", "zen"], _tiny_batch(), build=lambda a, c: net)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_parse_proxies_and_bad_names():
    assert parse_proxies("all") == PROXIES.names()
    assert parse_proxies("snip, synflow,snip") == ["snip", "synflow"]
    with pytest.raises(NasforgeError, match="unknown zero-cost proxy 'nope'"):
        parse_proxies("snip,nope")
    with pytest.raises(NasforgeError, match="batch_size"):
        proxy_batch("synthetic-8px", batch_size=1)


# ---------------------------------------------------------------------------------------
# the evaluator
# ---------------------------------------------------------------------------------------
class _Fixed(Searcher):
    name = "fixed"

    def __init__(self, archs, fidelity=None):
        super().__init__(seed=0)
        self.archs, self.fidelity, self.told = archs, fidelity, []

    def _ask(self):
        return Ask(self.archs[self.num_told % len(self.archs)], self.fidelity)

    def _tell(self, told):
        self.told.append(told)


def test_zero_cost_evaluator_answers_the_score_and_charges_its_seconds():
    archs = [Arch.from_index(i) for i in (3, 77, 500)]
    ev = ZeroCostEvaluator("synflow", _tiny_batch(), C=4, N=1)
    r = run_search(_Fixed(archs), ev, "3evals")
    h = r.history
    for arch, value, cost in zip(h["arch_index"], h["valid"], h["cost"], strict=True):
        s, _ = compute_proxies(Arch.from_index(arch), ["synflow"], ev.batch(), C=4, N=1)
        assert value == pytest.approx(s["synflow"])
        assert cost > 0
    assert r.total_cost == pytest.approx(sum(r.history["cost"]))
    assert r.times[-1] == pytest.approx(r.total_cost)
    # a cached score is charged again in the next run, not given for free
    again = run_search(_Fixed(archs), ev, "3evals")
    assert again.history["cost"] == r.history["cost"]
    with pytest.raises(SearchError, match="fidelity 12"):
        ev.evaluate(archs[0], 12)


def test_zero_cost_evaluator_honours_a_seconds_budget():
    ev = ZeroCostEvaluator("params", _tiny_batch(), C=4, N=1, scores={})
    ev._known = {Arch.from_index(i).to_string(): (float(i), 2.0) for i in range(20)}
    r = run_search(_Fixed([Arch.from_index(i) for i in range(20)]), ev, "9s")
    assert r.num_evals == 4 and r.total_cost == 8.0


def test_with_zero_cost_routes_fidelity_zero_to_the_proxy(tmp_path):
    from nasforge.bench import make_synthetic_table
    from nasforge.evaluate import TabularEvaluator

    table = make_synthetic_table(tmp_path / "syn", datasets=("cifar10-valid",), hps={"12": 12})
    base = TabularEvaluator(table, "cifar10-valid")
    zc = ZeroCostEvaluator("params", _tiny_batch(), C=4, N=1)
    both = WithZeroCost(base, zc)
    assert both.fidelities[0] == 0 and both.default_fidelity == base.default_fidelity
    arch = Arch.from_index(42)
    proxy = both.evaluate(arch, 0)
    assert proxy.fidelity == 0 and proxy.valid_acc == pytest.approx(zc.score(arch)[0])
    real = both.evaluate(arch, None)
    assert real.fidelity == base.default_fidelity
    assert math.isnan(both.report(arch, proxy).test_acc)
    assert both.report(arch, real) == base.report(arch, real)
    with pytest.raises(SearchError, match="real evaluator"):
        WithZeroCost(zc, zc)


# ---------------------------------------------------------------------------------------
# the CLI
# ---------------------------------------------------------------------------------------
def test_cli_writes_one_row_per_arch_and_resumes(tmp_path):
    runner = CliRunner()
    out = tmp_path / "zc.csv"
    args = [
        "zc",
        "--dataset",
        "synthetic-8px",
        "--proxies",
        "params,synflow",
        "--C",
        "2",
        "--N",
        "1",
    ]
    args += ["--batch-size", "4", "-o", str(out)]
    r = runner.invoke(app, [*args, "--archs", "3"])
    assert r.exit_code == 0, r.output
    rows = read_rows(out)
    assert [set(row) for row in rows] == [{"arch", "params", "synflow", "seconds"}] * 3
    first = {row["arch"]: row for row in rows}
    r = runner.invoke(app, [*args, "--archs", "5"])
    assert "2 archs scored, 3 already" in r.output
    rows = read_rows(out)
    assert len(rows) == 5 and {k: first[k] for k in first} == {row["arch"]: row for row in rows[:3]}
    arch_file = tmp_path / "archs.json"
    arch_file.write_text(json.dumps([ARCH, 7]))
    jout = tmp_path / "zc.json"
    r = runner.invoke(app, [*args[:-2], "-o", str(jout), "--archs", str(arch_file)])
    assert r.exit_code == 0, r.output
    assert [row["arch"] for row in json.loads(jout.read_text())] == [
        ARCH,
        Arch.from_index(7).to_string(),
    ]


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--proxies", "snip,bogus"], "bogus"),
        (["--archs", "nofile.txt"], "nofile.txt"),
        (["-o", "out.txt"], "out.txt"),
        (["--space", "width-resnet20"], "width-resnet20"),  # no network builder
        (["--space", "darts", "--N", "3"], "'N'"),  # an NB201-only option
    ],
)
def test_cli_rejects_bad_input_with_one_line(tmp_path, capsys, monkeypatch, extra, match):
    from nasforge.cli import main

    monkeypatch.chdir(tmp_path)
    base = ["zc", "--dataset", "synthetic-8px", "-o", str(tmp_path / "o.csv"), "--archs", "2"]
    import sys

    argv = sys.argv
    sys.argv = ["nasforge", *base, *extra]
    try:
        with pytest.raises(SystemExit) as exc:
            main()
    finally:
        sys.argv = argv
    assert exc.value.code == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


def test_with_zero_cost_over_a_final_metrics_table_keeps_proxy_and_real_apart(tmp_path):
    # a table of final metrics only (like the NB201 results export) answers at fidelity 0
    # ("final"); next to a proxy its answers are relabelled, so a warm-started searcher
    # never takes a real accuracy for a proxy score, nor recommends a proxy score
    from nasforge.bench import make_synthetic_table
    from nasforge.evaluate import TabularEvaluator
    from nasforge.search import BLACKBOX

    table = make_synthetic_table(
        tmp_path / "fin", datasets=("cifar10-valid",), hps={"12": 12}, final_only=True
    )
    base = TabularEvaluator(table, "cifar10-valid", seed_policy="mean")
    assert base.default_fidelity == 0
    known = {Arch.from_index(i).to_string(): (float(i % 97), 0.25) for i in range(15625)}
    both = WithZeroCost(base, ZeroCostEvaluator("params", _tiny_batch(), scores=known))
    label = base.recipe_epochs or 1
    assert both.fidelities == (0, label) and both.default_fidelity == label
    arch = Arch.from_index(7)
    assert both.evaluate(arch, 0).fidelity == 0
    real = both.evaluate(arch)
    assert real.fidelity == label and real.valid_acc == base.evaluate(arch).valid_acc
    s = BLACKBOX.create("zc-local-search", seed=0, zc_pool=30)
    r = run_search(s, both, "40evals", seed=0)
    assert s.config()["warm_start"] is True
    assert r.history["fidelity"][:30] == [0] * 30 and set(r.history["fidelity"][30:]) == {label}
    assert r.final_valid == max(r.history["valid"][30:])
    with pytest.raises(SearchError, match="final_fidelity"):
        WithZeroCost(base, ZeroCostEvaluator("params", _tiny_batch()), final_fidelity=0)


# ---------------------------------------------------------------------------------------
# nasforge search --zc-proxy: proxies on the search clock
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def syn_table(tmp_path_factory):
    from nasforge.bench import make_synthetic_table

    return make_synthetic_table(
        tmp_path_factory.mktemp("zcsearch") / "syn", datasets=("cifar10-valid",), hps={"12": 12}
    )


def _search_zc(table, out, *extra: str) -> list:
    from nasforge.report.search import load_runs

    args = ["search", "--algo", "zc-local-search", "--bench", str(table), "--budget", "600s"]
    args += ["--param", "zc_pool=12", "--zc-proxy", "synflow", "--zc-dataset", "synthetic-8px"]
    args += ["--zc-batch-size", "4", "--channels", "2", "--cells", "1", "--seed", "3"]
    args += ["--quiet", "-o", str(out), *extra]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    return load_runs(out / "trajectories.jsonl")


def test_search_cli_charges_proxy_time_to_the_clock(syn_table, tmp_path):
    (run,) = _search_zc(syn_table, tmp_path / "measured")
    h = run.history
    assert h["fidelity"][:12] == [0] * 12 and 0 not in h["fidelity"][12:]
    proxy_costs = h["cost"][:12]
    assert all(c > 0 for c in proxy_costs)  # the measured compute seconds of each proxy
    # the clock advanced by the proxy time before the first real evaluation
    assert run.times[11] == pytest.approx(sum(proxy_costs))
    assert run.total_cost == pytest.approx(sum(h["cost"])) and run.total_cost <= 600
    assert run.config["searcher"]["warm_start"] is True


@pytest.mark.slow
def test_search_cli_with_a_fixed_proxy_charge_is_reproducible(syn_table, tmp_path):
    (a,) = _search_zc(syn_table, tmp_path / "a", "--zc-charge", "5")
    (b,) = _search_zc(syn_table, tmp_path / "b", "--zc-charge", "5")
    assert a.history["cost"][:12] == [5.0] * 12 and a.times[11] == pytest.approx(60.0)
    assert a.history == b.history and a.final_arch == b.final_arch


def test_search_cli_rejects_a_bad_proxy_before_work(syn_table, tmp_path):
    args = ["search", "--algo", "rea", "--bench", str(syn_table), "--zc-proxy", "nope"]
    res = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "x")])
    # a NasforgeError: `nasforge` prints its one line and exits 2
    assert isinstance(res.exception, NasforgeError) and "'nope'" in str(res.exception)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("space", "size"), [("darts", ["--C", "4", "--network", "layers=3"]), ("nats-sss", [])]
)
def test_cli_scores_any_space_with_a_network(tmp_path, space, size):
    from nasforge.spaces import get_space

    out = tmp_path / f"{space}.csv"
    args = ["zc", "--space", space, "--dataset", "synthetic-8px", "--proxies", "params,synflow"]
    args += ["--archs", "2", "--batch-size", "4", *size, "-o", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    rows = read_rows(out)
    sp = get_space(space)
    assert len(rows) == 2 and len({r["arch"] for r in rows}) == 2
    for row in rows:
        assert sp.to_string(sp.from_string(row["arch"])) == row["arch"]
        assert row["params"] > 0 and math.isfinite(row["synflow"]) and row["seconds"] > 0


def test_proxies_sharing_a_pass_score_as_on_their_own():
    # snip / grad_norm / plain share one backward pass, jacov / epe_nas one input Jacobian,
    # when scored together: the scores must equal those computed one proxy at a time
    batch = _tiny_batch(n=8)
    arch = Arch.parse(ARCH)
    names = ["snip", "jacov", "grad_norm", "synflow", "plain", "epe_nas"]
    together, secs = compute_proxies(arch, names, batch, C=4, N=1)
    assert list(together) == names and all(secs[n] > 0 for n in names)
    for name in names:
        (alone, _) = compute_proxies(arch, [name], batch, C=4, N=1)
        assert together[name] == pytest.approx(alone[name], rel=1e-12, abs=1e-12), name

"""The search-space layer: the registry, the protocol every space implements, NB201's
encodings, and black-box search on a space that is not NB201."""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Hashable, Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from nasforge.cli import app
from nasforge.errors import ArchError, RegistryError, SearchError
from nasforge.evaluate import Evaluator, Observation
from nasforge.search import BLACKBOX
from nasforge.search.base import run_search
from nasforge.search.protocol import build_searcher
from nasforge.spaces import (
    SPACES,
    CategoricalBase,
    CategoricalSpace,
    Choice,
    SearchSpace,
    get_space,
)
from nasforge.spaces import nb201 as nb201_mod

SRC = Path(__file__).resolve().parents[1] / "src" / "nasforge"
NB201 = get_space("nb201")
runner = CliRunner()


# ---------------------------------------------------------------------------------------
# every registered space keeps the protocol
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SPACES.names())
def test_every_registered_space_keeps_the_protocol(name: str) -> None:
    space = get_space(name)
    assert isinstance(space, SearchSpace) and space.name == name
    rng = np.random.default_rng(0)
    lengths = {k: None for k in space.encodings()}
    for _ in range(20):
        a = space.sample(rng)
        assert space.from_string(space.to_string(a)) == a
        child = space.mutate(a, rng)
        assert child != a and child in space.neighbors(a)
        for kind in space.encodings():
            vec = space.encode(a, kind)
            assert vec.ndim == 1
            assert lengths[kind] in (None, vec.size)  # fixed length per kind
            lengths[kind] = vec.size
        i = space.index(a)
        assert (i is None) == (space.size() is None)
        if i is not None:
            assert 0 <= i < space.size()
        assert space.canonical(space.canonical(a)) == space.canonical(a)
    assert space.describe()["space"] == name
    json.dumps(space.describe())  # JSON-ready (space info --json)
    json.dumps(space.describe_arch(a))


def test_the_registry_builds_spaces_by_name() -> None:
    assert {"nb201", "width-resnet20", "width-resnet56", "width-mobilenetv2"} <= set(SPACES)
    assert get_space() is get_space("nb201")  # nb201 is the default
    assert get_space(NB201) is NB201
    with pytest.raises(RegistryError, match=r"unknown search space 'nb301'.*nb201"):
        get_space("nb301")
    # settings reach the space's factory
    uniform = get_space("width-resnet20", bins="uniform", levels=4)
    assert all(len(c.options) == 4 for c in uniform.choices())


# ---------------------------------------------------------------------------------------
# NB201 behind the protocol: official index, 6,466 classes, unchanged moves
# ---------------------------------------------------------------------------------------
def test_nb201_space_keeps_index_classes_and_moves() -> None:
    archs = list(NB201.enumerate())
    assert NB201.size() == len(archs) == 15625
    assert [NB201.index(a) for a in archs[:50]] == list(range(50))  # official index order
    assert len({NB201.canonical(a) for a in archs}) == 6466
    assert NB201.from_string("0") == archs[0]  # an official index is accepted too
    # the same draws as the Arch methods the searchers used before the protocol
    r1, r2 = np.random.default_rng(5), np.random.default_rng(5)
    a = NB201.sample(r1)
    assert a == nb201_mod.Arch.sample(r2)
    assert NB201.mutate(a, r1) == a.mutate(r2)
    assert NB201.neighbors(a) == a.neighbors()
    assert [c.name for c in NB201.choices()] == ["1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2"]
    assert NB201.from_choices(NB201.to_choices(a)) == a


def test_nb201_bad_input_raises_arch_error() -> None:
    with pytest.raises(ArchError, match="expected"):
        NB201.from_string("|conv~0|")
    with pytest.raises(ArchError, match=r"no 'bananas' encoding.*onehot"):
        NB201.encode(nb201_mod.Arch.from_index(0), "bananas")


@given(st.integers(0, 15624))
def test_nb201_encoding_lengths_and_onehot(i: int) -> None:
    a = nb201_mod.Arch.from_index(i)
    one = NB201.encode(a, "onehot")
    assert one.shape == (30,)
    assert one.reshape(6, 5).argmax(axis=1).tolist() == list(a.op_ids)
    adj = NB201.encode(a, "adjacency")
    assert adj.shape == (58,) and np.array_equal(adj[28:], one)
    assert NB201.encode(a, "path").shape == (155,)
    assert NB201.describe()["encodings"] == {
        "onehot": 30,
        "adjacency": 58,
        "path": 155,
        "trunc_path": 30,
    }


def test_nb201_distinct_archs_have_distinct_onehot_encodings() -> None:
    enc = np.stack([NB201.encode(a, "onehot") for a in NB201.enumerate()])
    assert len(np.unique(enc, axis=0)) == 15625  # (adjacency = 28 fixed bits + onehot)


# NASLib's op-on-node matrix of the NB201 cell (naslib/search_spaces/nasbench201/
# encodings.py, encode_gcn_nasbench201): input, the 6 edges in NASLib's EDGE_LIST order
# (0->1, 0->2, 0->3, 1->2, 1->3, 2->3), output.
NASLIB_MATRIX = np.array(
    [
        [0, 1, 1, 1, 0, 0, 0, 0],
        [0, 0, 0, 0, 1, 1, 0, 0],
        [0, 0, 0, 0, 0, 0, 1, 0],
        [0, 0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 1, 0],
        [0, 0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 0, 0],
    ]
)


def test_nb201_adjacency_is_naslibs_matrix_in_official_edge_order() -> None:
    # official edge k -> NASLib vertex: 1<-0: 0->1, 2<-0: 0->2, 2<-1: 1->2, 3<-0: 0->3, ...
    perm = [0, 1, 2, 4, 3, 5, 6, 7]
    m = nb201_mod.vertex_adjacency()
    assert np.array_equal(m, NASLIB_MATRIX[np.ix_(perm, perm)])
    assert not np.tril(m).any()  # strictly upper triangular: the flattening is lossless


def test_nb201_path_encoding_by_hand() -> None:
    a = nb201_mod.Arch.from_string(
        "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|"
    )
    # op ids: conv3=3, skip=1, none=0, avg=4, conv1=2, skip=1 (edges in official order)
    # 0->3: [avg] -> 4; 0->1->3: 5 + 3 + 2*5 = 18; 0->2->3: 5 + 1 + 1*5 = 11;
    # 0->1->2->3: 30 + 3 + 0*5 + 1*25 = 58
    assert np.flatnonzero(NB201.encode(a, "path")).tolist() == [4, 11, 18, 58]


@given(st.integers(0, 15624), st.integers(0, 4))
def test_nb201_path_encoding_invariances(i: int, op: int) -> None:
    a = nb201_mod.Arch.from_index(i)
    enc = NB201.encode(a, "path")
    # one path of length 1, two of length 2 (which may share a bit), one of length 3
    assert enc[:5].sum() == 1 and enc[30:].sum() == 1 and enc[5:30].sum() in (1, 2)
    ids = list(a.op_ids)

    def changed(edge: int) -> np.ndarray:
        new = ids.copy()
        new[edge] = op
        return NB201.encode(nb201_mod.Arch.from_op_ids(new), "path") != enc

    # an edge changes only the bits of the paths through it
    assert not changed(3)[5:].any()  # 3<-0 lies on the length-1 path only
    assert not changed(2)[:30].any()  # 2<-1 lies on the length-3 path only
    assert not changed(4)[:5].any() and not changed(4)[30:].any()  # 3<-1: 0->1->3 only
    # paths are a set of op sequences: two length-2 paths with the same ops share one bit
    sym = ids.copy()
    sym[1], sym[5] = ids[0], ids[4]  # 0->2->3 gets the ops of 0->1->3
    sym_arch = nb201_mod.Arch.from_op_ids(sym)
    assert NB201.encode(sym_arch, "path")[5:30].sum() == 1


def test_width_chain_space_round_trips_and_costs() -> None:
    space = get_space("width-resnet20")
    assert isinstance(space, CategoricalSpace)
    full = space.width.largest()
    assert space.from_string(space.to_string(full)) == full
    info = space.describe_arch(full)
    assert info["flops_m"] == pytest.approx(space.width.spec.full_flops)
    assert space.index(full) == space.size() - 1  # every group at its last candidate
    with pytest.raises(ArchError, match=r"has 1 position.*expected 12, in the form stage1="):
        space.from_string("stage1=999")
    with pytest.raises(ArchError, match=r"expected stage1=<one of \['2', '3'"):
        space.from_string(",".join(["stage1=999"] * 12))


# ---------------------------------------------------------------------------------------
# any searcher on any space: a toy space registered here, with its own evaluator
# ---------------------------------------------------------------------------------------
class ToySpace(CategoricalBase):
    """Three positions with 3, 2 and 4 options (24 archs); an arch is a tuple of names."""

    name = "toy"
    _CHOICES = (
        Choice("kernel", ("k1", "k3", "k5")),
        Choice("act", ("relu", "gelu")),
        Choice("width", ("w8", "w16", "w32", "w64")),
    )

    def choices(self) -> tuple[Choice, ...]:
        return self._CHOICES

    def to_choices(self, arch: tuple[str, ...]) -> tuple[int, ...]:
        return tuple(c.options.index(v) for c, v in zip(self._CHOICES, arch, strict=True))

    def from_choices(self, picks: Sequence[int]) -> tuple[str, ...]:
        if len(picks) != 3 or any(
            not 0 <= p < len(c.options) for p, c in zip(picks, self._CHOICES, strict=True)
        ):
            raise ArchError(f"toy picks {list(picks)} invalid")
        return tuple(c.options[int(p)] for c, p in zip(self._CHOICES, picks, strict=True))


class ToyEvaluator(Evaluator):
    """Valid accuracy grows with each position's pick (best: k5, gelu, w64 = 95%); one
    simulated second per epoch."""

    def __init__(self) -> None:
        self.calls: list[Hashable] = []

    @property
    def space(self) -> SearchSpace:
        return get_space("toy")

    @property
    def fidelities(self) -> Sequence[int]:
        return (1, 3, 9)

    @property
    def default_fidelity(self) -> int:
        return 9

    def evaluate(self, arch, fidelity=None, *, resume_key=None) -> Observation:
        self.calls.append(arch)
        f = fidelity or 9
        picks = ToySpace().to_choices(arch)  # raises on anything that is not a toy arch
        acc = 50.0 + 10 * picks[0] + 5 * picks[1] + 5 * picks[2] + f / 9
        return Observation(arch, acc, f, float(f), test_acc=acc - 1)


@pytest.fixture
def toy_registered():
    with SPACES.temporary("toy", ToySpace):
        yield


@pytest.mark.parametrize("algo", ["random", "rea", "reinforce", "local-search", "bohb"])
def test_every_blackbox_searcher_runs_on_a_second_space(toy_registered, algo) -> None:
    ev = ToyEvaluator()
    r = run_search(build_searcher(algo, 0), ev, "60evals", seed=0)
    assert r.num_evals == 60 and r.config["space"] == "toy"
    toy = get_space("toy")
    # every asked arch is a toy arch, recorded as its string and index
    assert all(isinstance(a, tuple) and len(a) == 3 for a in ev.calls)
    assert [toy.from_string(s) for s in r.history["arch"]] == ev.calls
    assert r.history["arch_index"] == [toy.index(a) for a in ev.calls]
    assert set(r.history["arch"]) > {r.final_arch}
    if algo != "bohb":  # bohb's top rung sees fewer archs; the others find the optimum
        assert r.final_arch == "kernel=k5,act=gelu,width=w64"
        assert r.best_index[-1] == toy.size() - 1
    assert math.isfinite(r.final_test)


def test_reinforce_masks_missing_options(toy_registered) -> None:
    s = BLACKBOX.create("reinforce", seed=0)
    run_search(s, ToyEvaluator(), "30evals", seed=0)
    p = s.probs()
    assert p.shape == (3, 4)
    assert p[0, 3] == 0 and p[1, 2:].sum() == 0  # positions with 3 and 2 options
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert s.policy_arch() in list(get_space("toy").enumerate())


class _Plain:
    """A space with no categorical structure (delegates to the toy space otherwise)."""

    name = "plain"

    def __getattr__(self, attr):
        if attr in ("choices", "to_choices", "from_choices"):
            raise AttributeError(attr)
        return getattr(ToySpace(), attr)


@pytest.mark.parametrize("algo", ["reinforce", "bohb"])
def test_categorical_searchers_refuse_other_spaces(monkeypatch, algo) -> None:
    ev = ToyEvaluator()
    monkeypatch.setattr(ToyEvaluator, "space", property(lambda self: _Plain()))
    with pytest.raises(SearchError, match=f"{algo} needs a categorical space.*'plain'"):
        run_search(build_searcher(algo, 0), ev, "5evals")
    # the others need only the protocol
    assert run_search(build_searcher("rea", 0), ev, "5evals").num_evals == 5


# ---------------------------------------------------------------------------------------
# the layering: search and evaluate name no concrete arch type
# ---------------------------------------------------------------------------------------
def _imports(path: Path) -> list[tuple[str, list[str]]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out.extend((a.name, []) for a in node.names)
    return out


def test_search_and_evaluate_import_no_concrete_arch_type() -> None:
    # One-shot methods reach a space through its supernet adapter (search/oneshot/spaces/),
    # which alone names the space's types; loop.py keeps the NB201 plot until it moves.
    allowed = {Path("search/oneshot/loop.py")}
    files = [
        p
        for p in [*(SRC / "search").rglob("*.py"), *(SRC / "evaluate").rglob("*.py")]
        if p.relative_to(SRC).parts[:3] != ("search", "oneshot", "spaces")
        and p.relative_to(SRC) not in allowed
    ]
    assert len(files) > 10 and SRC / "search/oneshot/bnnas.py" in files
    bad = []
    for f in files:
        for module, names in _imports(f):
            concrete = module.startswith(("nasforge.spaces.nb201", "nasforge.nn.nb201"))
            arch_name = module.startswith("nasforge.spaces") and "Arch" in names
            if concrete or arch_name:
                bad.append(f"{f.relative_to(SRC)}: {module} {names}")
    assert not bad, bad


# ---------------------------------------------------------------------------------------
# networks by space, and the CLI
# ---------------------------------------------------------------------------------------
def test_network_builder_by_space() -> None:
    from nasforge.nn import NB201Network, build_network, network_options

    a = nb201_mod.Arch.from_index(9)
    assert network_options("nb201") == {"C": 16, "N": 5}
    net = build_network("nb201", a, num_classes=7, C=4, N=1)
    assert isinstance(net, NB201Network) and net.classifier.out_features == 7
    with pytest.raises(ArchError, match=r"no option 'layers'.*\['C', 'N'\]"):
        build_network("nb201", a, num_classes=7, layers=8)


def test_training_evaluator_refuses_spaces_without_a_network() -> None:
    from nasforge.evaluate import TrainingEvaluator

    # checked before any data is loaded
    with pytest.raises(SearchError, match="'width-resnet20' has no network builder"):
        TrainingEvaluator("nb201-12e", "no-such-dataset", space="width-resnet20")
    with pytest.raises(SearchError, match=r"no option 'depth'"):
        TrainingEvaluator("nb201-12e", "no-such-dataset", network={"depth": 3})


def _toy_network(arch: tuple[str, ...], *, num_classes: int, stem: int = 4):
    """A tiny network whose shape follows the toy arch: kernel size and width."""
    from torch import nn

    k = int(arch[0][1:])
    width = int(arch[2][1:]) // 8
    act = nn.ReLU() if arch[1] == "relu" else nn.GELU()
    return nn.Sequential(
        nn.Conv2d(3, stem * width, k, padding=k // 2),
        act,
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(stem * width, num_classes),
    )


@pytest.mark.slow  # a real (tiny) training per evaluation, ~10 s on a shared CPU
def test_training_evaluator_builds_the_network_through_the_space(
    toy_registered, one_torch_thread
) -> None:
    from nasforge.evaluate import TrainingEvaluator
    from nasforge.nn import NETWORKS

    with NETWORKS.temporary("toy", _toy_network):
        ev = TrainingEvaluator(
            "nb201-12e",
            "digits",
            space="toy",
            network={"stem": 2},
            limit=64,
            recipe_overrides={"epochs": 1, "batch_size": 32},
        )
        assert ev.space.name == "toy" and ev.describe()["stem"] == 2
        r = run_search(build_searcher("rea", 0), ev, "2evals", seed=0)
    assert r.num_evals == 2 and all(r.history["ok"])
    toy = get_space("toy")
    assert all(toy.from_string(s) in set(toy.enumerate()) for s in r.history["arch"])
    assert all(0.0 <= v <= 100.0 for v in r.history["valid"])


def test_space_list_and_info_cover_every_space() -> None:
    res = runner.invoke(app, ["space", "list", "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["space"]: (r["size"], r["indexed"]) for r in json.loads(res.output)}
    # the size is the exact count for every space; whether it has an index is said apart
    assert rows["nb201"] == (15625, True) and rows["width-resnet56"][1] is False
    assert rows["width-resnet56"][0] > 2**63
    for name in SPACES.names():
        res = runner.invoke(app, ["space", "info", name, "--json"])
        assert res.exit_code == 0, res.output
        assert json.loads(res.output)["space"] == name


def test_arch_info_takes_any_space() -> None:
    space = get_space("width-resnet20")
    s = space.to_string(space.width.smallest())
    res = runner.invoke(app, ["arch", "info", "--space", "width-resnet20", s, "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["space"] == "width-resnet20" and info["arch"] == s
    assert info["flops_m"] < space.width.spec.full_flops


def test_search_cli_checks_the_space_first(tmp_path) -> None:
    res = runner.invoke(
        app, ["search", "--algo", "rea", "--space", "nb301", "--bench", str(tmp_path), "-o", "x"]
    )
    assert isinstance(res.exception, RegistryError) and "nb301" in str(res.exception)
    res = runner.invoke(
        app,
        [
            *("search", "--algo", "rea", "--space", "width-resnet20"),
            *("--bench", str(tmp_path), "-o", str(tmp_path / "out")),
        ],
    )
    assert isinstance(res.exception, SearchError)
    assert "tables answer for 'nats-sss' or 'nb201'" in str(res.exception)
    assert not (tmp_path / "out").exists()

"""AOWS's latency variables keyed as the official model keys them (issue #24, item 3).

The official ``Vartype`` (bermanmaxim/AOWS ``latency.py:29``) is a layer type plus
(in, out) channels, shared by every layer of that type; monotonicity runs along the input
channels, the output channels and the input size (``get_inequalities``, ``latency.py:271-290``).
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from nasforge.cost.latency_model import (
    FORMAT_V1,
    LatencyFitSettings,
    LatencyModel,
    fit_latency_model,
    sample_configurations,
)
from nasforge.errors import SearchError
from nasforge.spaces.width import (
    CLASSES_GROUP,
    INPUT_GROUP,
    BackboneSpec,
    GroupSpec,
    LayerSpec,
    WidthSpace,
    make_space,
)


def _layer_cost(layer: LayerSpec, cin: int, cout: int) -> float:
    """A known per-layer latency (ms) that depends only on the official key: the layer's type
    and its channels (multiply-adds plus a per-channel overhead)."""
    area = layer.out_size**2
    if layer.kind == "conv":
        return 1e-6 * layer.kernel**2 * cin * cout * area + 2e-4 * cout
    if layer.kind == "dwconv":
        return 1e-6 * layer.kernel**2 * cout * area + 3e-4 * cout
    if layer.kind == "bn":
        return 2e-7 * cout * area + 1e-4
    return 1e-5 * cin * cout + 5e-3


def _measured(space: WidthSpace, indices: np.ndarray) -> np.ndarray:
    """Latency of each configuration: the sum over the layers it has (no model code used)."""
    out = []
    for w in space.decode(indices):
        ch = {**space.spec.widths_dict(w), INPUT_GROUP: 3, CLASSES_GROUP: space.spec.num_classes}
        out.append(
            sum(_layer_cost(ly, ch[ly.cin], ch[ly.cout]) for ly in space.spec.present_layers(w))
        )
    return np.asarray(out)


def test_layers_of_one_type_and_channels_share_one_variable() -> None:
    space = make_space("resnet20", levels=3)
    model = LatencyModel(space)
    assert model.keying == "layer-type"  # the official keying is the default
    # The three 3x3 conv1 of stage 1 go between groups of the same candidate widths at the
    # same size and stride: their tables read the same variables (train_nas.py:312-326).
    tabs = {t: i for i, t in enumerate(model.terms)}
    rows = []
    for b in (1, 2, 3):
        i = tabs[("stage1", f"stage1.block{b}")]
        rows.append(model.expand[model.offsets[i] : model.offsets[i + 1]].toarray())
    np.testing.assert_array_equal(rows[0], rows[1])
    np.testing.assert_array_equal(rows[0], rows[2])
    # A configuration's design row counts its layers of each type (collect_repetitions).
    idx = space.sample_indices(np.random.default_rng(0), 4)
    m = model.design(idx).toarray()
    assert m.sum(axis=1).tolist() == [len(space.spec.present_layers(w)) for w in space.decode(idx)]
    assert m.max() >= 2  # shared: some variable counted for two layers of one configuration
    assert model.num_variables < LatencyModel(space, keying="group-pair").num_variables


def test_layer_type_keying_generalises_from_few_measurements() -> None:
    """With latencies that depend only on (layer type, channels), the official keying learns
    from 100 measured configurations what the per-group-pair tables cannot."""
    space = make_space("resnet20", levels=3)
    rng = np.random.default_rng(1)
    train = space.sample_indices(rng, 100)
    held = space.sample_indices(rng, 200)
    y, yh = _measured(space, train), _measured(space, held)
    err = {}
    for keying in ("layer-type", "group-pair"):
        model = LatencyModel(space, keying=keying)
        model.fit(train, y, penalty=100.0)
        err[keying] = model.rmse(held, yh)
    assert err["layer-type"] < 0.02 * yh.std()
    assert err["group-pair"] > 5 * err["layer-type"]


def _two_size_space() -> WidthSpace:
    # Three 3x3 convs of one type at two output sizes (8 and 4) over groups of the same
    # candidate widths: keys that differ only in the size.
    groups = (GroupSpec(INPUT_GROUP, 3, False), GroupSpec("a", 8), GroupSpec("b", 8),
              GroupSpec("c", 8), GroupSpec(CLASSES_GROUP, 10, False))  # fmt: skip
    layers = (
        LayerSpec("stem", "conv", INPUT_GROUP, "a", 5, 1, 8),  # another type (kernel 5)
        LayerSpec("conv1", "conv", "a", "b", 3, 1, 8),
        LayerSpec("conv2", "conv", "b", "c", 3, 1, 4),
        LayerSpec("bn", "bn", "c", "c", out_size=4),
        LayerSpec("fc", "linear", "c", CLASSES_GROUP, bias=True),
    )
    return WidthSpace(BackboneSpec("toy", 8, 10, groups, layers), bins="uniform", levels=3)


def test_monotonicity_runs_along_channels_and_input_size() -> None:
    space = _two_size_space()
    model = LatencyModel(space)
    var = {k: i for i, k in enumerate(model.keys)}
    d = model.monotonicity().toarray()
    pairs = {(int(np.flatnonzero(r == 1)[0]), int(np.flatnonzero(r == -1)[0])) for r in d}
    widths = [int(c) for c in space.candidates[0]]
    for ci in widths:
        for co in widths:
            # Input size (official 'in_size' bucket): the smaller map is never the slower one.
            assert (
                var[("conv", 3, 1, False, 4, ci, co)],
                var[("conv", 3, 1, False, 8, ci, co)],
            ) in pairs
    for lo, hi in itertools.pairwise(widths):
        k = ("conv", 3, 1, False, 8)
        assert (var[(*k, lo, 8)], var[(*k, hi, 8)]) in pairs  # input channels
        assert (var[(*k, 8, lo)], var[(*k, 8, hi)]) in pairs  # output channels
        assert (var[("bn", 1, 1, False, 4, lo, lo)], var[("bn", 1, 1, False, 4, hi, hi)]) in pairs
    # Data that says the 4x4 conv is slower than the 8x8 one: the penalty keeps the order.
    idx = np.array(np.meshgrid(*[range(3)] * 3, indexing="ij")).reshape(3, -1).T
    y = np.asarray([10.0 - 0.5 * i[2] for i in idx])  # nonsense: wider c is faster
    model.fit(idx, y, penalty=1e4)
    assert (model.monotonicity() @ model.x <= 1e-3).all()


def test_layer_type_model_saves_loads_and_reads_the_earlier_format(tmp_path) -> None:
    space = make_space("resnet20", levels=3)
    rng = np.random.default_rng(2)
    idx = sample_configurations(LatencyModel(space), rng, 60, biased=True)
    model = LatencyModel(space)
    model.fit(idx, _measured(space, idx), penalty=100.0)
    back = LatencyModel.load(model.save(tmp_path / "m.json"), space)
    assert back.keying == "layer-type" and back.info["keying"] == "layer-type"
    np.testing.assert_allclose(back.predict_indices(idx), model.predict_indices(idx))
    # A file of the earlier format (group-pair tables only) loads as group-pair keying.
    old = LatencyModel(space, keying="group-pair")
    old.x = rng.random(old.num_variables)
    d = old.to_dict()
    v1 = {"format": FORMAT_V1, "space": d["space"], "terms": d["terms"], "tables": d["tables"],
          "info": {}}  # fmt: skip
    (tmp_path / "v1.json").write_text(json.dumps(v1))
    back = LatencyModel.load(tmp_path / "v1.json", space)
    assert back.keying == "group-pair"
    np.testing.assert_allclose(back.predict_indices(idx), old.predict_indices(idx))
    # A layer-type file whose variables do not match the space is refused in one line.
    bad = model.to_dict()
    bad["keys"] = bad["keys"][:-1]
    bad["x"] = bad["x"][:-1]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(SearchError, match="latency variables are not this space's"):
        LatencyModel.load(tmp_path / "bad.json", space)


def test_conditional_layers_count_only_where_they_exist() -> None:
    # NATS-Bench size space: a skip edge is a 1x1 conv + BN only where two widths differ.
    space = make_space("nats-sss", levels=4)
    model = LatencyModel(space)
    rng = np.random.default_rng(3)
    train, held = space.sample_indices(rng, 150), space.sample_indices(rng, 100)
    model.fit(train, _measured(space, train), penalty=100.0)
    yh = _measured(space, held)
    assert model.rmse(held, yh) < 0.02 * yh.std()


def test_bad_keying_is_a_one_line_error() -> None:
    space = make_space("resnet20", levels=3)
    with pytest.raises(SearchError, match="latency keying 'per-layer' unknown"):
        LatencyModel(space, keying="per-layer")
    with pytest.raises(SearchError, match="latency keying 'x' unknown"):
        LatencyFitSettings(keying="x")
    with pytest.raises(SearchError, match="only with keying='group-pair'"):
        LatencyModel(space, {})


def test_fit_latency_model_uses_the_settings_keying() -> None:
    space = make_space("resnet20", levels=3)

    def measure(w):
        idx = space.encode(w)[None]
        return float(_measured(space, idx)[0])

    s = LatencyFitSettings(samples=40, val_samples=10)
    model = fit_latency_model(space, measure=measure, settings=s, seed=0)
    assert model.keying == "layer-type" and model.info["keying"] == "layer-type"
    gp = fit_latency_model(space, measure=measure, settings=LatencyFitSettings(
        samples=40, val_samples=10, keying="group-pair"), seed=0)  # fmt: skip
    assert gp.keying == "group-pair" and gp.num_variables > model.num_variables


def test_cli_checks_the_keying_before_any_work(tmp_path) -> None:
    from typer.testing import CliRunner

    from nasforge.cli import app

    out = tmp_path / "run"
    args = ["width", "search", "--method", "aows", "--latency-target", "1", "--dataset",
            "digits", "--latency-keying", "per-layer", "-o", str(out)]  # fmt: skip
    r = CliRunner().invoke(app, args)
    # (main() turns the SearchError into one line and exit code 2.)
    assert r.exit_code != 0 and "latency keying 'per-layer' unknown" in str(r.exception)
    assert not out.exists()

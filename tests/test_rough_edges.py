"""The rough edges a new user hit (issue 22, "What the new user also hit", items 1-9): each
test fails on the code before the fix."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import nasforge.data
from nasforge.bench import Benchmark
from nasforge.bench.compat import NASBench201API
from nasforge.bench.importers import import_table
from nasforge.cli import app
from nasforge.cost import arch_cost
from nasforge.data import load_splits
from nasforge.data.base import DatasetSplits, Split
from nasforge.data.splits import limit_splits
from nasforge.errors import BenchError, DataError, SearchError
from nasforge.spaces.nb201 import Arch

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner(env={"COLUMNS": "250"})  # usage errors on one line
HEADER = (
    "index,arch,cifar100_valid12,cifar100_valtest200,cifar100_test200,cifar100_train_time200,"
    "in16_valid12,in16_valtest200,in16_test200,in16_train_time200"
)
# The first three rows of the real export (../shared/nb201/real_cifar100_imagenet16.csv).
ROWS = [
    (0, 31.84, 52.8067, 52.9133, 2888.437, 18.4667, 27.4222, 26.6333, 8763.518),
    (1, 57.8, 70.06, 70.2933, 4339.283, 35.4333, 44.2611, 44.0333, 13165.384),
    (2, 58.2, 70.4633, 70.31, 4190.316, 36.0, 44.7278, 44.4333, 12529.058),
]


@pytest.fixture
def export_table(tmp_path) -> Path:
    """A table imported from rows of the real NB201 results export (`bench import`)."""
    src = tmp_path / "export.csv"
    lines = [HEADER] + [
        ",".join([str(i), Arch.from_index(i).to_string(), *map(str, vals)]) for i, *vals in ROWS
    ]
    src.write_text("\n".join(lines) + "\n")
    return import_table(src, tmp_path / "real.table", format="csv")


# -- 1. the demo's default profile fits a few minutes --------------------------------------
def test_demo_profile_is_the_short_one_and_the_full_one_is_a_flag():
    from nasforge.cli.oneshot import resolve_overrides

    quick = resolve_overrides("pc-darts", "digits", None, None)
    assert (quick["epochs"], quick["warmup_epochs"], quick["N"]) == (10, 3, 2)
    # `--epochs 20` is the earlier profile: the published warm-up share gives 6 of 20
    full = resolve_overrides("pc-darts", "digits", 20, None)
    assert (full["epochs"], full["warmup_epochs"]) == (20, 6)
    readme = (ROOT / "README.md").read_text()
    assert "--epochs 20" in readme and "ONEDNN_MAX_CPU_ISA" in readme


# -- 2. the compat facade on a table imported from the real export --------------------------
def test_compat_repr_show_and_costs_on_an_imported_export(export_table, capsys):
    api = NASBench201API(str(export_table))
    for rc in api.query_by_index(1, "cifar100", hp="200").values():
        text = repr(rc)  # raised TypeError on None costs
        assert "FLOP=" in text and "None" not in text.split("seed=")[0]
    api.show(1)  # raised TypeError (None loss) and CompatKeyError (hp 12 has no x-test)
    out = capsys.readouterr().out
    assert "not recorded" in out and "top1 = 70.29%" in out
    for ds in ("cifar100", "ImageNet16-120"):
        costs = api.get_cost_info(1, ds, hp="200")
        want = arch_cost(Arch.from_index(1), ds)
        assert (costs["params"], costs["flops"]) == (want.params_m, want.flops_m)


# -- 3. --limit takes a stratified, seeded sample of every split, and says so ---------------
def _sorted_splits() -> DatasetSplits:
    """Splits whose test set is sorted by class (as the CIFAR-10 subset's test file)."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(5).repeat_interleave(40)  # 0,0,...,1,1,...
    images = torch.randint(0, 255, (200, 3, 8, 8), dtype=torch.uint8, generator=g)
    split = Split("test", images, labels)
    return DatasetSplits("toy", Split("train", images, labels), {"test": split}, 5, 8,
                         (0.5,) * 3, (0.25,) * 3, 1)  # fmt: skip


def test_limit_is_a_stratified_seeded_sample_with_a_note():
    data = _sorted_splits()
    small = limit_splits(data, 50, seed=0)
    for split in (small.train, small.evals["test"]):
        assert torch.bincount(split.labels, minlength=5).tolist() == [10] * 5
    assert small.notes[-1] == (
        "limit 50: kept a class-stratified sample (data seed 0) of each split: "
        "train 50 of 200 (5 classes), test 50 of 200 (5 classes)"
    )
    again, other = limit_splits(data, 50, seed=0), limit_splits(data, 50, seed=1)
    assert torch.equal(again.evals["test"].images, small.evals["test"].images)
    assert not torch.equal(other.evals["test"].images, small.evals["test"].images)
    # uneven classes: largest remainder keeps the total and the proportions
    labels = torch.tensor([0] * 7 + [1] * 2 + [2])
    sub = Split("x", torch.zeros(10, 3, 2, 2, dtype=torch.uint8), labels).stratified(5, seed=0)
    assert torch.bincount(sub.labels, minlength=3).tolist() == [4, 1, 0]
    with pytest.raises(DataError, match="limit_mode"):
        load_splits("digits", limit=5, limit_mode="first")


def test_train_limit_says_what_it_took(monkeypatch):
    import nasforge.train

    seen = {}

    def no_training(arch, data, *args, **kwargs):  # the data is what is under test
        seen["sizes"] = data.summary()
        raise SearchError("stop after loading")

    monkeypatch.setattr(nasforge.train, "train_arch", no_training)
    args = ["train", "--arch", "1", "--dataset", "digits", "--limit", "40", "--quiet"]
    r = runner.invoke(app, args)
    assert isinstance(r.exception, SearchError), r.output
    assert seen["sizes"] == {"train": 40, "valid": 40, "test": 40}
    assert "limit 40: kept a class-stratified sample (data seed 0) of each split" in r.output
    assert "valid 40 of 360 (10 classes), test 40 of 359 (10 classes)" in r.output


# -- 4. network options are checked before any work -----------------------------------------
def test_darts_cells_below_three_is_a_usage_error_before_any_work(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("data loaded before the bad option was refused")

    monkeypatch.setattr(nasforge.data, "load_splits", forbidden)
    r = runner.invoke(app, ["train", "--space", "darts", "--arch", "DARTS_V2", "--cells", "2"])
    assert r.exit_code == 2, r.output
    assert "--cells" in r.output and "needs >= 3 cells" in r.output and "got 2" in r.output


# -- 5. piped output: no arch string wrapped or cut, progress as complete lines ------------
def test_piped_bench_top_and_arch_info_keep_whole_arch_strings(export_table):
    r = CliRunner().invoke(app, ["bench", "top", str(export_table), "--dataset", "cifar100"])
    assert r.exit_code == 0, r.output
    assert "…" not in r.output
    for i, *_ in ROWS:
        assert Arch.from_index(i).to_string() in r.output  # on one line, whole
    arch = Arch.from_index(0).to_string()
    r = CliRunner().invoke(app, ["arch", "info", arch])
    assert r.exit_code == 0 and r.output.count(arch) == 2 and "…" not in r.output


def test_piped_progress_ends_as_one_complete_line(capsys):
    from nasforge.progress import make_progress, output_console

    bar = make_progress("{task.description}", "{task.fields[info]}")
    with bar:
        task = bar.add_task("search pc-darts on digits", total=320, info="")
        for _ in range(320):
            bar.update(task, advance=1, info="epoch 20/20")
    long = "|" + "nor_conv_3x3~0|" * 30
    output_console().print(long)
    out = capsys.readouterr().out
    assert "320/320" in out and "epoch 20/20" in out and "…" not in out
    assert long + "\n" in out  # not wrapped


# -- 6. a latency target missed by the chosen widths is said, not hidden -------------------
def test_width_search_warns_when_the_winner_misses_the_latency_target(tmp_path, monkeypatch):
    from nasforge.cost.latency_model import LatencyModel
    from nasforge.search.width import protocol
    from nasforge.train import get_recipe

    data = protocol.load_data("digits", seed=protocol.DATA_SEED, limit=32)
    space = protocol.space_for("resnet20", data, levels=3)
    rng = np.random.default_rng(0)
    shell = LatencyModel(space, keying="group-pair")
    tables = {
        t: np.cumsum(rng.random(s) * 0.05, axis=len(s) - 1)
        for t, s in zip(shell.terms, shell.shapes, strict=True)
    }
    model_path = LatencyModel(space, tables, keying="group-pair").save(tmp_path / "lat.json")
    target = 2.0

    def run(measured_ms: float) -> dict:
        monkeypatch.setattr(protocol, "measure_widths", lambda *a, **k: measured_ms)
        return protocol.run_search(
            backbone="resnet20", dataset="digits", method="uniform-width", limit=32,
            out_dir=tmp_path / f"run{measured_ms}", recipe=get_recipe("nb201-12e", epochs=1),
            levels=3, latency_target=target,
            latency=protocol.LatencySetup(model_path=model_path),
        )  # fmt: skip

    with pytest.warns(protocol.LatencyTargetMissed, match=r"2.46 ms.*23% over the 2 ms target"):
        rec = run(2.46)
    assert len(rec["warnings"]) == 2 and "uniform-width" in rec["warnings"][0]
    saved = json.loads((tmp_path / "run2.46" / "search.json").read_text())
    assert saved["warnings"] == rec["warnings"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", protocol.LatencyTargetMissed)
        assert run(1.5)["warnings"] == []


# -- 7. one vocabulary ---------------------------------------------------------------------
def test_search_lists_only_what_it_runs_and_points_width_methods_elsewhere(tmp_path):
    from nasforge.search.protocol import search_algorithm

    with pytest.raises(SearchError) as exc:
        search_algorithm("nope")
    assert "rea" in str(exc.value) and "cafenet" not in str(exc.value)
    assert "fixed-width" not in str(exc.value) and "aows" not in str(exc.value)
    with pytest.raises(SearchError, match="nasforge width search --method fixed-width"):
        search_algorithm("fixed-width")


def test_width_methods_have_one_name_and_old_ones_still_work():
    from nasforge.search import WIDTH
    from nasforge.search.width.protocol import METHODS, check_method

    assert all(m in WIDTH for m in METHODS)
    assert check_method("fixed") == check_method("fixed-width") == "fixed-width"
    assert check_method("uniform") == "uniform-width"
    with pytest.raises(SearchError) as exc:
        check_method("slim")
    assert "fixed-width" in str(exc.value) and "'fixed'" not in str(exc.value)
    r = CliRunner(env={"COLUMNS": "250"}).invoke(app, ["width", "search", "--help"])
    assert "fixed-width" in r.output


def test_cli_user_messages_and_readme_commands_use_the_cli_names(tmp_path):
    with pytest.raises(DataError) as exc:
        load_splits("cifar10", tmp_path / "absent")
    assert "--download" in str(exc.value)
    readme = (ROOT / "README.md").read_text()
    for line in readme.splitlines():
        if line.lstrip().startswith(("nasforge ", "$S", "D=", "S=")):
            assert " --C " not in line and " --N " not in line and "[--C" not in line, line


# -- 8. seed means are named, not shown as seed 0 ------------------------------------------
def test_seed_means_are_an_aggregate_in_info_and_exports(export_table, tmp_path):
    bench = Benchmark.open(export_table)
    for g in bench.info()["groups"]:
        assert g["aggregate"] == "mean" and g["seeds"] == []
    r = CliRunner().invoke(app, ["bench", "info", str(export_table)])
    assert "mean of seeds" in r.output
    frame = bench.to_pandas()
    assert frame["seed"].isna().all() and (frame["aggregate"] == "mean").all()
    out = tmp_path / "t.csv"
    r = CliRunner().invoke(app, ["bench", "export", str(export_table), "--format", "csv",
                                 "-o", str(out)])  # fmt: skip
    assert r.exit_code == 0, r.output
    header, first = out.read_text().splitlines()[:2]
    assert header.startswith("index,arch,dataset,hp,seed,aggregate,")
    assert ",12,,mean,ok," in first
    # round trip: one recipe's rows back into a table are seed means again
    lines = out.read_text().splitlines()
    (tmp_path / "hp200.csv").write_text("\n".join([lines[0], *[x for x in lines if ",200," in x]]))
    back = Benchmark.open(import_table(tmp_path / "hp200.csv", tmp_path / "back", hp="200"))
    assert {g["aggregate"] for g in back.info()["groups"]} == {"mean"}
    assert back.query(1, "cifar100", hp="200").final["test_acc"] == 70.2933
    # a per-seed table says nothing of aggregates
    (tmp_path / "seeds.csv").write_text(
        f"arch,seed,valid_acc\n{Arch.from_index(3).to_string()},777,50.0\n"
    )
    seeds = Benchmark.open(import_table(tmp_path / "seeds.csv", tmp_path / "s", dataset="digits"))
    assert (
        seeds.info()["groups"][0]["seeds"] == [777] and seeds.aggregate("digits", "final") is None
    )
    # a row with both a seed and an aggregate is refused
    (tmp_path / "bad.csv").write_text(
        f"arch,seed,aggregate,valid_acc\n{Arch.from_index(3).to_string()},777,mean,50.0\n"
    )
    with pytest.raises(BenchError, match="has no seed"):
        import_table(tmp_path / "bad.csv", tmp_path / "b", dataset="digits")


# -- 9. space list / info agree; a lookup needs no torch ------------------------------------
def test_space_list_and_info_agree_with_the_same_keys():
    from nasforge.cli.arch import COMMON_INFO_KEYS

    listed = json.loads(runner.invoke(app, ["space", "list", "--json"]).output)
    for row in listed:
        info = json.loads(runner.invoke(app, ["space", "info", row["space"], "--json"]).output)
        assert tuple(info)[: len(COMMON_INFO_KEYS)] == COMMON_INFO_KEYS
        assert (info["size"], info["indexed"]) == (row["size"], row["indexed"])
        # an int wherever the space can count its archs (None: it cannot say)
        assert info["size"] is None or (isinstance(info["size"], int) and info["size"] > 1)
    sizes = {r["space"]: r["size"] for r in listed}
    assert all(isinstance(sizes[n], int) for n in ("nb201", "nats-sss", "darts", "width-resnet56"))
    darts = next(r for r in listed if r["space"] == "darts")
    assert darts["size"] == 1_076_746_950_455_072_400 and darts["indexed"] is False


def test_arch_info_answers_without_importing_torch():
    code = (
        "import sys; from nasforge.cli import main; sys.argv = ['nasforge', 'arch', 'info', "
        "'0', '--dataset', 'cifar100', '--json']\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules)"
    )
    src = str(ROOT / "src")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": src, "PATH": ""}, check=True)  # fmt: skip
    text, imported = proc.stdout.rsplit("\n", 2)[0], proc.stdout.split()[-1]
    info = json.loads(text)
    assert imported == "False"
    want = arch_cost(Arch.from_index(0), "cifar100")  # published: 0.135156 M, 15.65322 M
    assert (info["params_m"], info["flops_m"]) == (want.params_m, want.flops_m)


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100", "ImageNet16-120"])
def test_counted_costs_equal_the_built_network(dataset):
    from nasforge.cost.nb201 import counted_cost, network_cost
    from nasforge.spaces.nb201 import NUM_EDGES, OPS

    for C, N in ((16, 5), (8, 1)):
        for op in OPS:
            assert counted_cost(op, dataset, C, N) == network_cost(
                Arch((op,) * NUM_EDGES), dataset, C, N
            )


def test_embedded_demo_runs_on_one_thread_unless_threads_is_given(monkeypatch):
    from nasforge.cli import oneshot, options

    seen: list[int] = []
    monkeypatch.setattr(
        oneshot, "search_oneshot", lambda *a, **k: seen.append(torch.get_num_threads())
    )
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        oneshot.run_oneshot("pc-darts", "digits", Path("unused"))
        assert seen == [1] and torch.get_num_threads() == 2  # restored
        oneshot.run_oneshot("pc-darts", "cifar10", Path("unused"))  # not embedded: untouched
        monkeypatch.setattr(options, "_THREADS_GIVEN", [True])
        oneshot.run_oneshot("pc-darts", "digits", Path("unused"))  # --threads given: kept
        assert seen == [1, 2, 2]
    finally:
        torch.set_num_threads(before)
    # the flag follows each command line: given, then not given
    runner.invoke(app, ["search", "--algo", "nope", "--threads", "1", "-o", "unused"])
    assert options.threads_given()
    runner.invoke(app, ["search", "--algo", "nope", "-o", "unused"])
    assert not options.threads_given()

"""Acceptance: scripts written only against the official APIs (the usage of the
nas_201_api / NATS-Bench READMEs and of well-known downstream dump scripts: NASLib-style
learning-curve dumps, HW-NAS-Bench-style accuracy loops, ``arch2infos_dict`` walkers) run
unchanged on a nasforge table and print the same numbers as the official API on the
official-format file the table was imported from.

Each script text runs twice: once with the official package importable under its own name,
once with ``nas_201_api`` / ``nats_bench`` resolving to :mod:`nasforge.bench.compat`.
Both read ``$TORCH_HOME``, which holds the official file and, next to it, the imported table
(``<official name>.table``, the name ``create(None, ...)`` and ``API(<official path>)`` look
for).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import random
import re
import sys
import types

import numpy as np
import pytest
import torch

from nasforge.bench import compat
from nasforge.bench.importers import import_table
from nasforge.errors import BenchError
from nasforge.spaces.nb201 import NUM_ARCHS, Arch

nas_201_api = pytest.importorskip("nas_201_api")
nats_bench = pytest.importorskip("nats_bench")

INDICES = (0, 301, 15624)
DATASETS = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
EVAL_SETS = {
    "cifar10-valid": ("x-valid", "ori-test"),
    "cifar10": ("ori-test",),
    "cifar100": ("x-valid", "x-test", "ori-test"),
    "ImageNet16-120": ("x-valid", "x-test", "ori-test"),
}
# The official recipes: 12 and 200 epochs (scripts index 'ori-test@199').
HPS = {"12": 12, "200": 200}
NB201_FILE = "NAS-Bench-201-v1_1-096897.pth"
NATS_DIR = "NATS-tss-v1_0-3ffb9-simple"
SSS_DIR = "NATS-sss-v1_0-50262-simple"
# The size space: recipes of 1, 12 and 90 epochs (AutoDL-Projects sss-collect.py,
# hps = ["01", "12", "90"]); archs spread over the index, first and last included.
SSS_HPS = {"01": 1, "12": 12, "90": 90}
SSS_INDICES = (0, 4096, 9000, 32767)
#: The fixed cell of every size-space network (main-sss.py: arch-index 9930).
SSS_CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def sss_meta_archs() -> list[str]:
    """The official size-space order, written out as ``traverse_net`` builds it (first
    layer outermost over ascending candidates) -- independently of nasforge's space."""
    candidates = (8, 16, 24, 32, 40, 48, 56, 64)
    return [":".join(map(str, c)) for c in itertools.product(candidates, repeat=5)]


def _trial(mod, dataset, seed, epochs, rng, index, arch_str=None):
    """One trial, built with the official ResultsCount class (a size-space trial when
    ``arch_str`` is a channel string: its config is the one sss-collect.py writes)."""
    classes = {"cifar100": 100, "ImageNet16-120": 120}.get(dataset, 10)
    if arch_str is None:
        cfg = {
            "channel": 16,
            "num_cells": 5,
            "arch_str": Arch.from_index(index).to_string(),
            "class_num": classes,
        }
    else:
        cfg = {
            "name": "infer.shape.tiny",
            "channels": arch_str,
            "arch_str": arch_str,
            "genotype": SSS_CELL,
            "class_num": classes,
        }
    train_acc = dict(enumerate(rng.uniform(10, 99, epochs).tolist()))
    train_loss = dict(enumerate(rng.uniform(0.01, 2.3, epochs).tolist()))
    train_times = dict(enumerate(rng.uniform(5, 20, epochs).tolist()))
    params, flop = 0.1 + index * 1e-5, 10.0 + index * 1e-3
    rc = mod.ResultsCount(
        dataset, None, train_acc, train_loss, params, flop, cfg, seed, epochs, None
    )
    rc.update_train_info(train_acc, None, train_loss, train_times)
    # One set per update_eval call: eval_names in the official set order. (The real files
    # hold the order of a Python set at generation time; a table keeps the official order.)
    for name in EVAL_SETS[dataset]:
        keys = [f"{name}@{i}" for i in range(epochs)]
        rc.update_eval(
            dict(zip(keys, rng.uniform(10, 95, epochs).tolist(), strict=True)),
            dict(zip(keys, rng.uniform(0.1, 2.3, epochs).tolist(), strict=True)),
            dict(zip(keys, rng.uniform(0.5, 2, epochs).tolist(), strict=True)),
        )
    return rc


def _arch_results(mod, index, epochs, rng, salt, arch_str=None):
    ar = mod.ArchResults(index, arch_str or Arch.from_index(index).to_string())
    for ds in DATASETS:
        for seed in (777, 888, 999)[: 1 + (index + len(ds) + salt) % 3]:
            ar.update(ds, seed, _trial(mod, ds, seed, epochs, rng, index, arch_str))
        # The official files set one latency per arch and dataset for every seed
        # (ArchResults.reset_latency(dataset, None, latency)).
        ar.reset_latency(ds, None, 0.004 + index * 1e-7 + len(ds) * 1e-5)
    return ar


@pytest.fixture(scope="module")
def torch_home(tmp_path_factory):
    """$TORCH_HOME with the official NB201 .pth, the NATS -simple directory, and the two
    tables imported from them."""
    from nats_bench.api_utils import pickle_save

    home = tmp_path_factory.mktemp("torch_home")
    meta = [Arch.from_index(i).to_string() for i in range(NUM_ARCHS)]
    rng = np.random.default_rng(0)
    arch2infos = {
        i: {
            key: _arch_results(nas_201_api, i, HPS[hp], rng, 0).state_dict()
            for key, hp in (("less", "12"), ("full", "200"))
        }
        for i in INDICES
    }
    torch.save(
        {"meta_archs": meta, "arch2infos": arch2infos, "evaluated_indexes": list(INDICES)},
        home / NB201_FILE,
    )
    nats = home / NATS_DIR
    nats.mkdir()
    pickle_save({"meta_archs": meta}, str(nats / "meta.pickle"))
    for i in INDICES:
        obj = {hp: _arch_results(nats_bench, i, e, rng, 1).state_dict() for hp, e in HPS.items()}
        pickle_save(obj, str(nats / f"{i:06d}.pickle"))
    import_table(home / NB201_FILE, compat.sibling_table(home / NB201_FILE))
    import_table(nats, compat.sibling_table(nats))
    write_sss_dir(home / SSS_DIR, np.random.default_rng(3))
    import_table(home / SSS_DIR, compat.sibling_table(home / SSS_DIR))
    return home


def write_sss_dir(root, rng, indices=SSS_INDICES):
    """An official-format NATS-Bench size ``-simple`` directory, written with nats_bench's
    own classes and ``pickle_save`` (meta.pickle.pbz2 + one NNNNNN.pickle.pbz2 per arch)."""
    from nats_bench.api_utils import pickle_save

    root.mkdir()
    meta = sss_meta_archs()
    pickle_save({"meta_archs": meta, "total_archs": len(meta)}, str(root / "meta.pickle"))
    for i in indices:
        obj = {
            hp: _arch_results(nats_bench, i, e, rng, 2, arch_str=meta[i]).state_dict()
            for hp, e in SSS_HPS.items()
        }
        pickle_save(obj, str(root / f"{i:06d}.pickle"))
    return root


def _run(script: str, *, ours: bool, monkeypatch, torch_home) -> str:
    """Run a script text with the official package or with our facade under its name."""
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    with monkeypatch.context() as m:
        if ours:
            m.setitem(
                sys.modules,
                "nas_201_api",
                types.SimpleNamespace(NASBench201API=compat.NASBench201API),
            )
            m.setitem(sys.modules, "nats_bench", types.SimpleNamespace(create=compat.create))
        out = io.StringIO()
        random.seed(2020)
        with contextlib.redirect_stdout(out):
            exec(compile(script, "<official-api script>", "exec"), {"__name__": "__main__"})
    # nats_bench logs the default path it resolves with a timestamp: not a result
    return "\n".join(
        line for line in out.getvalue().splitlines() if not re.match(r"^\[\d{4}-\d\d-\d\d ", line)
    )


_NUM = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _assert_same_output(ours: str, theirs: str) -> None:
    """Same text; numbers equal to 1e-9 relative (sums over seeds may differ in the last
    bit: the table stores the per-arch aggregate the official call recomputes)."""
    a, b = ours.splitlines(), theirs.splitlines()
    assert len(a) == len(b), (len(a), len(b))
    for k, (x, y) in enumerate(zip(a, b, strict=True)):
        assert _NUM.sub("#", x) == _NUM.sub("#", y), f"line {k}:\n ours:   {x}\n theirs: {y}"
        for u, v in zip(_NUM.findall(x), _NUM.findall(y), strict=True):
            assert float(u) == pytest.approx(float(v), rel=1e-9, abs=1e-12), f"line {k}: {x} | {y}"


def _check(script, monkeypatch, torch_home):
    theirs = _run(script, ours=False, monkeypatch=monkeypatch, torch_home=torch_home)
    ours = _run(script, ours=True, monkeypatch=monkeypatch, torch_home=torch_home)
    assert len(theirs) > 5000  # the script did real work
    _assert_same_output(ours, theirs)
    return ours


# The NB201 README tour (nas_201_api): iterate, show, ArchResults, per-trial ResultsCount.
README_NB201 = """
import os
from nas_201_api import NASBench201API as API

api = API(os.path.join(os.environ['TORCH_HOME'], 'NAS-Bench-201-v1_1-096897.pth'), verbose=False)
num = len(api)
names = [arch_str for i, arch_str in enumerate(api)]
print(num, len(names), names[1], names[-1])
for index in sorted(api.evaluated_indexes):
    api.show(index)
    info = api.query_meta_info_by_index(index)  # an ArchResults (hp='12')
    res_metrics = info.get_metrics('cifar10', 'train')
    cost_metrics = info.get_compute_costs('cifar100')
    print(res_metrics)
    print(cost_metrics)
    results = api.query_by_index(index, 'cifar100', hp='200')
    print('There are {:} trials for this architecture [{:}] on cifar100'.format(len(results), api[index]))
    for seed, result in results.items():
        print('Latency : {:}'.format(result.get_latency()))
        print('Train Info : {:}'.format(result.get_train()))
        print('Valid Info : {:}'.format(result.get_eval('x-valid')))
        print('Test  Info : {:}'.format(result.get_eval('x-test')))
        print('Train Info [10-th epoch] : {:}'.format(result.get_train(10)))
    print('config={:}'.format(api.get_net_config(index, 'cifar10')))
    print(api.get_more_info(index, 'cifar10-valid', None, '200', False))
    print(api.get_more_info(index, 'cifar100', 5, '12', True))
    print(api.get_cost_info(index, 'ImageNet16-120', '200'))
    print(api.simulate_train_eval(index, 'cifar100', '200'))
    print(api.query_info_str_by_arch(api.arch(index), hp='200'))
index = api.query_index_by_arch('|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|')
print(index, api.query_index_by_arch('|nor_conv_3x3~0|+|bogus~0|'))
for dataset in ['cifar10', 'cifar100', 'ImageNet16-120']:
    for xset in ['train', 'test', 'valid']:
        print(dataset, xset, api.find_best(dataset, xset, hp='200'))
print(api.find_best('cifar100', 'x-test', FLOP_max=12.0, hp='12'))
print(api.str2lists(api[301]))
print(api.str2matrix(api[301]).tolist())
"""

# The NATS-Bench README tour (nats_bench, fast mode over the -simple directory).
README_NATS = """
from nats_bench import create

api = create(None, 'tss', fast_mode=True, verbose=False)
print(len(api), api[12])
for index in range(len(api)):
    try:
        info = api.get_more_info(index, 'cifar10', hp='200', is_random=False)
    except Exception:
        continue  # not in this (partial) benchmark
    print(index, info)
    print(api.get_more_info(index, 'cifar10-valid', iepoch=3, hp='12', is_random=777))
    print(api.get_cost_info(index, 'cifar100', hp='200'))
    print(api.get_latency(index, 'ImageNet16-120', hp='12'))
    print(api.simulate_train_eval(index, dataset='cifar10', hp='12'))
    print(api.simulate_train_eval(index, dataset='ImageNet16-120', iepoch=5, hp='200'))
    print(api.get_net_config(index, 'cifar100'))
    api.show(index)
    api.clear_params(index)
    api.reload(None, index)
    for seed, rc in api.query_by_index(index, 'cifar100', hp='200').items():
        print(seed, rc.eval_acc1es['ori-test@199'], rc.eval_losses['x-valid@199'], rc.eval_times['x-test@0'])
        print(rc.get_times(), rc.get_total_epoch(), rc.get_config(None))
    meta = api.query_meta_info_by_index(index, hp='12')
    print(meta.get_dataset_names(), meta.get_dataset_seeds('cifar100'), meta.get_total_epoch())
    print(meta.get_metrics('ImageNet16-120', 'ori-test', iepoch=7, is_random=False))
    print(meta.get_metrics('cifar10-valid', 'x-valid', is_random=True))
print(api.used_time)
"""

# A NASLib-style learning-curve dump (and the arch2infos_dict / accuracy-loop patterns of
# other downstream scripts): per arch and dataset, the curves of one seed and the costs.
DUMP_NB201 = """
import json, os
from nas_201_api import NASBench201API as API

api = API(os.path.join(os.environ['TORCH_HOME'], 'NAS-Bench-201-v1_1-096897.pth'), verbose=False)
data = {}
for index in sorted(api.evaluated_indexes):
    arch_str = api.arch(index)
    meta = api.query_meta_info_by_index(index, hp='200')
    row = {}
    for dataset, valid, test in (('cifar10-valid', 'x-valid', 'ori-test'),
                                 ('cifar100', 'x-valid', 'x-test'),
                                 ('ImageNet16-120', 'x-valid', 'x-test')):
        results = api.query_by_index(index, dataset, hp='200')
        seed = list(results.keys())[0]
        result = results[seed]
        epochs = result.epochs
        row[dataset] = {
            'seed': seed,
            'train_losses': [result.train_losses[e] for e in range(epochs)],
            'train_accs': [result.train_acc1es[e] for e in range(epochs)],
            'train_times': [result.train_times[e] for e in range(epochs)],
            'val_accs': [result.eval_acc1es['{}@{}'.format(valid, e)] for e in range(epochs)],
            'val_losses': [result.eval_losses['{}@{}'.format(valid, e)] for e in range(epochs)],
            'test_accs': [result.eval_acc1es['{}@{}'.format(test, e)] for e in range(epochs)],
            'eval_times': [result.eval_times['{}@{}'.format(valid, e)] for e in range(epochs)],
            'params': result.params, 'flops': result.flop, 'latency': result.get_latency(),
            'mean_acc': meta.get_metrics(dataset, test)['accuracy'],
            'costs': meta.get_compute_costs(dataset)['flops'],
        }
    data[arch_str] = row
print(json.dumps(data, sort_keys=True))
for arch_index, arch_info in sorted(api.arch2infos_dict.items()):
    result = next(iter(arch_info['200'].query('cifar10-valid').values()))
    print(arch_index, result.eval_acc1es['ori-test@199'], arch_info['12'].get_total_epoch())
accs = []
for idx in sorted(api.evaluated_indexes):
    accs.append(api.query_meta_info_by_index(idx).get_metrics(dataset='cifar10', setname='ori-test')['accuracy'])
print(accs, sorted(range(len(accs)), key=accs.__getitem__))
"""


# The NATS-Bench size tour (nats_bench, fast mode over the -simple directory): the same
# query surface as topology on channel strings, recipes 01 / 12 / 90.
README_SSS = """
from nats_bench import create

api = create(None, 'sss', fast_mode=True, verbose=False)
print(len(api), api[12], api.arch(4096), api.is_size, api.is_topology, api.full_epochs_in_paper)
for arch in ['8:8:8:8:8', '64:64:64:64:64', '16:8:8:8:8', '8:8:8:8:16', 9000, 77]:
    index = api.query_index_by_arch(arch)
    try:
        info = api.get_more_info(index, 'cifar10', hp='90', is_random=False)
    except Exception:
        print('not in this benchmark', arch, index)
        continue
    print(arch, index, info)
    print(api.get_more_info(arch, 'cifar10-valid', iepoch=3, hp='12', is_random=777))
    print(api.get_more_info(index, 'cifar100', hp='01', is_random=False))
    print(api.get_more_info(index, 'ImageNet16-120', iepoch=40, hp='90', is_random=True))
    print(api.get_cost_info(index, 'cifar100', hp='90'))
    print(api.get_latency(index, 'ImageNet16-120', hp='12'))
    print(api.simulate_train_eval(index, dataset='cifar10', hp='12'))
    print(api.simulate_train_eval(arch, dataset='ImageNet16-120', iepoch=5, hp='90'))
    print(api.get_net_config(index, 'cifar100'))
    print(api.query_by_arch(api.arch(index), '90'))
    api.show(index)
    for seed, rc in api.query_by_index(index, 'cifar100', hp='90').items():
        print(seed, rc.eval_acc1es['ori-test@89'], rc.eval_losses['x-valid@89'], rc.eval_times['x-test@0'])
        print(rc.get_times(), rc.get_total_epoch(), rc.get_config(None), rc.get_train(50))
    meta = api.query_meta_info_by_index(index, hp='12')
    print(meta.get_dataset_names(), meta.get_dataset_seeds('cifar100'), meta.get_total_epoch())
    print(meta.get_metrics('ImageNet16-120', 'ori-test', iepoch=7, is_random=False))
    print(meta.get_metrics('cifar10-valid', 'x-valid', is_random=True))
    print(meta.get_compute_costs('cifar10'))
for dataset in ['cifar10', 'cifar100', 'ImageNet16-120']:
    for xset in ['train', 'test', 'valid']:
        print(dataset, xset, api.find_best(dataset, xset, hp='90', enforce_all=False))
print(api.find_best('cifar100', 'x-test', flop_max=12.0, hp='12', enforce_all=False))
print(api.query_index_by_arch('64:64:64:64:65'), api.query_index_by_arch('|nor_conv_3x3~0|+|'))
print(api.used_time)
"""


@pytest.mark.slow  # ~5 s each: the official API loads and deep-copies the whole file
@pytest.mark.parametrize(
    "script",
    [README_NB201, README_NATS, DUMP_NB201, README_SSS],
    ids=["nb201-readme", "nats-readme", "nb201-dump", "sss-readme"],
)
def test_official_scripts_print_the_same_numbers(script, monkeypatch, torch_home):
    _check(script, monkeypatch, torch_home)


def test_official_objects_on_the_table(monkeypatch, torch_home):
    """What the scripts do not print: types, errors, the no-weights error, defaults."""
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    api = compat.NASBench201API(None)  # $TORCH_HOME/NAS-Bench-201-v1_1-096897.table
    official = nas_201_api.NASBench201API(str(torch_home / NB201_FILE), verbose=False)
    ours = api.query_meta_info_by_index(301, "200")
    theirs = official.query_meta_info_by_index(301, "200")
    assert ours.get_dataset_names() == theirs.get_dataset_names()
    for ds in DATASETS:
        assert ours.get_dataset_seeds(ds) == theirs.get_dataset_seeds(ds)
        for (_, a), (_, b) in zip(
            sorted(ours.query(ds).items()), sorted(theirs.query(ds).items()), strict=True
        ):
            assert a.eval_acc1es == b.eval_acc1es and a.eval_losses == b.eval_losses
            assert a.eval_times == b.eval_times and a.train_times == b.train_times
            assert a.train_acc1es == b.train_acc1es and a.train_losses == b.train_losses
            assert sorted(a.eval_names) == sorted(b.eval_names) and a.epochs == b.epochs
            assert a.get_config(None) == b.get_config(None)
        # averages are numpy scalars in nas_201_api, floats in nats_bench: so in ours
        assert type(ours.get_metrics(ds, "train")["accuracy"]) is np.float64
    # the state dict loads into the official class
    again = nas_201_api.ArchResults.create_from_state_dict(ours.state_dict())
    assert again.get_metrics("cifar100", "x-test") == theirs.get_metrics("cifar100", "x-test")
    # no weights in a table: a clear error, not None (the official API returns the weights)
    with pytest.raises(BenchError, match="not trained weights"):
        api.get_net_param(301, "cifar10", None, hp="200")
    with pytest.raises(BenchError, match="not trained weights"):
        ours.get_net_param("cifar10", 777)
    # errors name what is missing
    with pytest.raises(BenchError, match="does not in arch2infos"):
        api.query_meta_info_by_index(5, "200")
    with pytest.raises(BenchError, match="hyper-parameters"):
        api.query_meta_info_by_index(301, "90")
    with pytest.raises(BenchError, match="invalid dataset-name"):
        api.query_by_index(301, "mnist", hp="200")
    with pytest.raises(KeyError, match="no results on 'mnist'"):
        ours.get_metrics("mnist", "train")
    assert 5 not in api.arch2infos_dict and 301 in api.arch2infos_dict
    # NATS flavour: plain floats, create(None) through $TORCH_HOME
    nats = compat.create(None, "tss", fast_mode=True, verbose=False)
    assert nats.filename == "NATS-tss-v1_0-3ffb9.table"
    assert (
        type(nats.query_meta_info_by_index(0, "12").get_metrics("cifar100", "train")["loss"])
        is float
    )
    # size space: create(None, 'sss') through $TORCH_HOME, the official class's surface
    sss = compat.create(None, "sss", fast_mode=True, verbose=False)
    assert isinstance(sss, compat.NATSsizeAPI) and sss.filename == "NATS-sss-v1_0-50262.table"
    assert len(sss) == 32768 and sss.evaluated_indexes == list(SSS_INDICES)
    assert sss.query_index_by_arch("64:64:64:64:64") == 32767
    assert sss.avaliable_hps == ["01", "12", "90"]
    with pytest.raises(BenchError, match="hyper-parameters"):
        sss.query_meta_info_by_index(0, "200")
    # a table of one space is refused by the other space's API, naming both
    with pytest.raises(BenchError, match=r"holds the nats-sss space.*create\(path, 'sss'\)"):
        compat.create(torch_home / "NATS-sss-v1_0-50262.table", "tss")
    with pytest.raises(BenchError, match="holds the nb201 space"):
        compat.create(torch_home / "NATS-tss-v1_0-3ffb9.table", "sss")
    with pytest.raises(BenchError, match="invalid search space"):
        compat.create(None, "xss")
    # an official file without its table: the exact import command
    (torch_home / "other").mkdir(exist_ok=True)
    lone = torch_home / "other" / NB201_FILE
    lone.write_bytes((torch_home / NB201_FILE).read_bytes())
    with pytest.raises(
        BenchError, match=r"nasforge bench import .* -o .*NAS-Bench-201-v1_1-096897\.table"
    ):
        compat.NASBench201API(lone)
    monkeypatch.setenv("TORCH_HOME", str(torch_home / "nowhere"))
    with pytest.raises(BenchError, match="no table at"):
        compat.create(None, "tss")
    monkeypatch.delenv("TORCH_HOME")
    monkeypatch.setenv("HOME", str(torch_home / "home"))
    with pytest.raises(BenchError, match=r"home/\.torch/NATS-tss-v1_0-3ffb9\.table"):
        compat.create(None, "tss")

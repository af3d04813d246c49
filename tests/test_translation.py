"""The translation task: readers, tokenizer, sacreBLEU scoring, decoding, the
rev-transformer space, and search -> arch.json -> train through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from nasforge.cli import app
from nasforge.data.translation import (
    BOS_ID,
    EOS_ID,
    german_number,
    numbers_en_de,
    read_parallel,
    read_parallel_dir,
    read_sgm,
)
from nasforge.errors import DataError, SearchError
from nasforge.nn.seq2seq import beam_search, greedy_decode
from nasforge.search.translation.rev_darts import check_params
from nasforge.spaces import get_space
from nasforge.tasks import get_task
from nasforge.tasks.translation import sacrebleu_corpus_bleu

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_readers_parallel_text_and_sgm(tmp_path: Path) -> None:
    (tmp_path / "train.en").write_text("a cat\r\nthe dog\n", encoding="utf-8")
    (tmp_path / "train.de").write_text("eine Katze\nder Hund\n", encoding="utf-8")
    (tmp_path / "test.en").write_text("hello\n", encoding="utf-8")
    sgm = (
        '<refset setid="newstest" srclang="any" trglang="de">\n<doc sysid="ref" docid="1">\n'
        '<seg id="1">  Hallo   Welt </seg>\n</doc>\n</refset>\n'
    )
    (tmp_path / "test.de.sgm").write_text(sgm, encoding="utf-8")
    assert read_parallel(tmp_path / "train.en", tmp_path / "train.de") == (
        ["a cat", "the dog"],
        ["eine Katze", "der Hund"],
    )
    assert read_sgm(tmp_path / "test.de.sgm") == ["Hallo Welt"]  # sacreBLEU's cleaning
    got = read_parallel_dir(tmp_path, "en", "de")
    assert set(got) == {"train", "test"} and got["test"] == (["hello"], ["Hallo Welt"])
    (tmp_path / "bad.de").write_text("x\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"has 2 segments but .*bad\.de has 1"):
        read_parallel(tmp_path / "train.en", tmp_path / "bad.de")
    with pytest.raises(DataError, match=r"no train\.xx"):
        read_parallel_dir(tmp_path, "en", "xx")


def test_parallel_directory_trains_a_tokenizer_on_train_only(tmp_path: Path) -> None:
    pairs = numbers_en_de(60, 5, 5, seed=1, max_number=99)
    for split, (en, de) in pairs.items():
        (tmp_path / f"{split}.en").write_text("\n".join(en) + "\n", encoding="utf-8")
        (tmp_path / f"{split}.de").write_text("\n".join(de) + "\n", encoding="utf-8")
    # A word that occurs only in the test references is never a piece of the vocabulary.
    (tmp_path / "test.de").write_text("Zwergpinscherzüchter.\n" * 5, encoding="utf-8")
    task = get_task("translation")
    data = task.load("parallel", tmp_path, vocab_size=200)
    assert data.summary() == {"train": 60, "valid": 5, "test": 5}
    assert data.evals["test"].ref[0] == "Zwergpinscherzüchter."
    assert "▁Zwergpinscherzüchter" not in data.tokenizer.pieces("Zwergpinscherzüchter")
    again = task.load("parallel", tmp_path, vocab_size=200)
    assert again.tokenizer.proto == data.tokenizer.proto  # deterministic training
    with pytest.raises(Exception, match="needs --data-dir"):
        task.load("parallel")


def test_numbers_task_is_deterministic_and_disjoint() -> None:
    a, b = numbers_en_de(50, 10, 10, seed=3), numbers_en_de(50, 10, 10, seed=3)
    assert a == b and a != numbers_en_de(50, 10, 10, seed=4)
    assert not set(a["train"][0]) & set(a["test"][0])
    assert german_number(342) == "dreihundertzweiundvierzig" and german_number(101) == (
        "einhunderteins"
    )


def test_bleu_is_sacrebleus_corpus_score_with_its_signature() -> None:
    from sacrebleu.metrics import BLEU

    hyps = ["Sie hat zwei rote Äpfel.", "Der Hund sieht eine Katze heute."]
    refs = ["Sie hat zwei rote Äpfel.", "Heute sieht der Hund eine Katze."]
    score, sig = sacrebleu_corpus_bleu(hyps, refs)
    assert score == pytest.approx(BLEU().corpus_score(hyps, [refs]).score)
    assert 0 < score < 100 and sig.startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp")


class _Scripted(nn.Module):
    """A fake seq2seq model whose next-token log-probabilities depend on the prefix:
    after bos, token 4 (p=.6) or 5 (p=.4); after 4 token 6, 7 or 8 (p=.4/.35/.25), then
    eos; after 5 eos for sure. Greedy takes 4-6 (p .6 * .4 = .24); beam search finds
    5-eos (p .4)."""

    def encode(self, src: torch.Tensor):
        return torch.zeros(src.shape[0], 1, 1), torch.zeros(src.shape[0], 1, dtype=torch.bool)

    def decode(self, memory, memory_pad, tokens: torch.Tensor) -> torch.Tensor:
        n, t = tokens.shape
        logits = torch.full((n, t, 10), -1e9)
        for i, row in enumerate(tokens.tolist()):
            if row == [BOS_ID]:
                logits[i, -1, 4], logits[i, -1, 5] = np.log(0.6), np.log(0.4)
            elif row[-1] == 4:
                logits[i, -1, 6:9] = torch.tensor([0.4, 0.35, 0.25]).log()
            else:
                logits[i, -1, EOS_ID] = 0.0
        return logits


def test_greedy_and_beam_search_decode_differently_where_they_should() -> None:
    model, src = _Scripted(), torch.tensor([[7, EOS_ID]])
    assert greedy_decode(model, src) == [[4, 6]]
    assert beam_search(model, src, beam=1) == [[4, 6]]  # beam 1 is greedy
    assert beam_search(model, src, beam=2, lenpen=0.0) == [[5]]


def test_rev_transformer_space_round_trips_and_counts_the_papers_ops() -> None:
    sp = get_space("rev-transformer")
    assert sp.size() == 13**4 * 14**4
    a = sp.sample(np.random.default_rng(0))
    assert sp.from_string(sp.to_string(a)) == a
    desc = sp.describe()
    assert len(desc["positions"]["enc.l0.s0"]) == 13 and len(desc["positions"]["dec.l1.s1"]) == 14
    assert "cross_attn" in desc["positions"]["dec.l0.s0"]
    assert sp.describe_arch(a)["dec.l0.s2"] == "cross_attn"  # the fixed split


def test_rev_darts_settings_are_checked_before_work() -> None:
    with pytest.raises(SearchError, match=r"no setting \['d_modle'\]"):
        check_params({"d_modle": 48})
    with pytest.raises(SearchError, match="multiple of 24"):
        check_params({"d_model": 40, "heads": 4})


def test_search_then_train_one_epoch_from_the_cli(tmp_path: Path) -> None:
    out = tmp_path / "search"
    tiny = ["d_model=24", "heads=2", "enc_layers=2", "dec_layers=2", "batch_size=16"]
    base = ["--task", "translation", "--space", "rev-transformer"]
    res = CliRunner().invoke(
        app,
        [
            "search",
            *base,
            "--algo",
            "rev-darts",
            "-o",
            str(out),
            "--epochs",
            "1",
            "--limit",
            "16",
            "--threads",
            "1",
            *[a for kv in [*tiny, "embed_dim=null"] for a in ("--param", kv)],
        ],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "arch.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    sp = get_space("rev-transformer")
    assert sp.to_string(sp.from_string(doc["arch"])) == doc["arch"]
    assert summary["splits"] == {"weights": 9, "arch": 7}
    assert set(summary["alphas"]) == {p.name for p in sp.choices()}
    assert all(abs(sum(w.values()) - 1) < 1e-9 for w in summary["alphas"].values())
    run = tmp_path / "run.json"
    res = CliRunner().invoke(
        app,
        [
            "train",
            *base,
            "--arch",
            str(out / "arch.json"),
            "--epochs",
            "1",
            "--limit",
            "8",
            "--threads",
            "1",
            "--quiet",
            "--out",
            str(run),
            *[a for kv in tiny[:4] for a in ("--network", kv)],
        ],
    )
    assert res.exit_code == 0, res.output
    rec = json.loads(run.read_text())
    assert rec["meta"]["task"] == "translation"
    last = rec["epochs"][-1]["eval"]
    assert set(last["test"]) == {"bleu", "loss"} and 0 <= last["test"]["bleu"] <= 100
    # A bad setting is refused (a SearchError: exit code 2 from `nasforge`) before any data.
    bad = CliRunner().invoke(
        app, ["search", *base, "--algo", "rev-darts", "-o", str(tmp_path / "b"), "--param", "x=1"]
    )
    assert bad.exit_code != 0 and "no setting ['x']" in str(bad.exception)
    assert not (tmp_path / "b" / "arch.json").exists()

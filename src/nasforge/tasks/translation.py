"""Machine translation: parallel text in, BLEU out.

Data (:mod:`nasforge.data.translation`): the embedded ``numbers-en-de`` language task, or
``parallel`` -- a directory of WMT-style line-aligned files (``train.en`` / ``train.de``,
``valid`` or ``dev``, ``test``; test sides may be WMT ``.sgm`` files) read with
``--data-dir``. A SentencePiece BPE model with one joint vocabulary is trained on the
training split only. Batches are ``x = (src, tgt_in)``, ``y =``
:class:`~nasforge.data.translation.Targets`; the network is a
:class:`~nasforge.nn.seq2seq.Seq2Seq` returning ``[B, T, V]`` logits.

Loss: token-level cross-entropy (label smoothing from the recipe, 0.1 in
``translation-adam`` as in the paper's search), averaged over the batch's target tokens.
Metrics: corpus BLEU of the detokenized hypotheses against the raw references, computed by
sacreBLEU (``sacrebleu.metrics.BLEU().corpus_score``, default 13a tokenization, exponential
smoothing; the signature is :attr:`TranslationTask.bleu_signature` and the BLEU metric's
description), and the per-token cross-entropy (nats) with teacher forcing. Hypotheses come
from beam search (beam 4, length penalty 0.6) or, for the ``translation-greedy`` variant,
greedy decoding.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.data.translation import (
    PAD_ID,
    TOKENIZER_TYPES,
    Targets,
    Tokenizer,
    TranslationData,
    TranslationLoader,
    make_split,
    numbers_en_de,
    read_parallel_dir,
    train_tokenizer,
)
from nasforge.errors import DataError, TaskError
from nasforge.tasks.base import LOSS, TASKS, Autocast, Metric, Task

#: sacreBLEU's signature of the default BLEU (known once a score was computed: it names
#: the number of references); shown in `nasforge task info` before any run.
_SIGNATURE_BEFORE_SCORING = "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:<installed>"


def sacrebleu_corpus_bleu(hyps: list[str], refs: list[str]) -> tuple[float, str]:
    """Corpus BLEU of ``hyps`` against one reference each, and sacreBLEU's signature."""
    from sacrebleu.metrics import BLEU

    if len(hyps) != len(refs):
        raise DataError(f"{len(hyps)} hypotheses for {len(refs)} references; expected equal")
    bleu = BLEU()
    score = bleu.corpus_score(hyps, [refs])
    return float(score.score), str(bleu.get_signature())


def _summed_token_ce(logits: torch.Tensor, y: Targets) -> float:
    """Summed cross-entropy (nats) of the non-padding target tokens."""
    return float(
        F.cross_entropy(
            logits.float().flatten(0, 1), y.ids.flatten(), ignore_index=PAD_ID, reduction="sum"
        )
    )


class TranslationTask(Task):
    """Sequence-to-sequence translation scored by sacreBLEU."""

    name = "translation"
    description = "machine translation (sacreBLEU corpus BLEU, token cross-entropy)"
    primary = "bleu"
    train_metrics = ()
    datasets = ("numbers-en-de", "parallel")
    default_dataset = "numbers-en-de"
    default_recipe = "translation-adam"
    losses = ("ce",)

    def __init__(self, beam: int = 4, lenpen: float = 0.6) -> None:
        if not isinstance(beam, int) or beam < 1:
            raise TaskError(f"beam={beam!r}; expected an int >= 1 (1 = greedy decoding)")
        self.beam, self.lenpen = beam, float(lenpen)
        self.bleu_signature: str | None = None

    @property
    def metrics(self) -> tuple[Metric, ...]:  # type: ignore[override]
        how = "greedy decoding" if self.beam == 1 else f"beam {self.beam}, lenpen {self.lenpen}"
        sig = self.bleu_signature or _SIGNATURE_BEFORE_SCORING
        bleu = Metric("bleu", "", True, "{:.2f}", f"sacreBLEU corpus BLEU ({how}); {sig}")
        return (bleu, LOSS)

    # -- data -----------------------------------------------------------------------------

    def load(
        self,
        dataset: str | None = None,
        data_dir: str | Path | None = None,
        *,
        seed: int = 0,
        limit: int | None = None,
        **options: Any,
    ) -> TranslationData:
        """``numbers-en-de`` (options ``n_train`` 4000, ``n_valid`` / ``n_test`` 200,
        ``max_number`` 999, ``vocab_size`` 1000) or ``parallel`` (``data_dir`` required;
        options ``src`` "en", ``tgt`` "de", ``vocab_size`` 32000); both take ``max_len``
        (tokens, default 128) and ``tokenizer`` ("bpe" or "unigram"). ``limit`` keeps the
        first N pairs of every split. A ``parallel`` directory without a valid split gets
        the last 5% of train (at least one pair) as valid."""
        name = dataset or self.default_dataset
        opts = dict(options)
        max_len = int(opts.pop("max_len", 128))
        kind = str(opts.pop("tokenizer", "bpe"))
        if kind not in TOKENIZER_TYPES:
            raise TaskError(f"tokenizer={kind!r}; expected one of {TOKENIZER_TYPES}")
        if max_len < 4:
            raise TaskError(f"max_len={max_len}; expected >= 4 tokens")
        if limit is not None and limit < 1:
            raise TaskError(f"limit={limit}; expected >= 1 pairs per split")
        if name == "numbers-en-de":
            vocab = int(opts.pop("vocab_size", 1000))
            gen = {
                k: opts.pop(k) for k in ("n_train", "n_valid", "n_test", "max_number") if k in opts
            }
            self._no_more(opts, name)
            raw = numbers_en_de(**{k: int(v) for k, v in gen.items()}, seed=seed)
            src_lang, tgt_lang = "en", "de"
        elif name == "parallel":
            if data_dir is None:
                raise TaskError(
                    "dataset 'parallel' needs --data-dir DIR holding train.SRC/train.TGT, "
                    "valid.* (or dev.*) and test.* files"
                )
            src_lang, tgt_lang = str(opts.pop("src", "en")), str(opts.pop("tgt", "de"))
            vocab = int(opts.pop("vocab_size", 32000))
            self._no_more(opts, name)
            raw = read_parallel_dir(data_dir, src_lang, tgt_lang)
            if "valid" not in raw:
                s, t = raw["train"]
                cut = len(s) - max(1, len(s) // 20)
                if cut < 1:
                    raise DataError(f"{data_dir}: train has {len(s)} pair(s); need >= 2")
                raw = {
                    "train": (s[:cut], t[:cut]),
                    "valid": (s[cut:], t[cut:]),
                    "test": raw["test"],
                }
        else:
            raise TaskError(
                f"unknown translation dataset {name!r}; expected one of {self.datasets}"
            )
        if limit is not None:
            raw = {k: (s[:limit], t[:limit]) for k, (s, t) in raw.items()}
        train_src, train_tgt = raw["train"]
        # The tokenizer sees the training side only, both languages (one joint vocabulary).
        tok = Tokenizer(train_tokenizer([*train_src, *train_tgt], vocab, model_type=kind))
        splits = {
            k: make_split(list(s), list(t), tok, max_len, drop_long=(k == "train"))
            for k, (s, t) in raw.items()
        }
        if not len(splits["train"]):
            raise DataError(f"{name}: no training pair is at most max_len={max_len} tokens")
        return TranslationData(
            name=name,
            train=splits["train"],
            evals={k: splits[k] for k in ("valid", "test") if k in splits},
            tokenizer=tok,
            src_lang=src_lang,
            tgt_lang=tgt_lang,
            max_len=max_len,
            info={"vocab_size": tok.vocab_size, "tokenizer": f"sentencepiece-{kind}"},
        )

    @staticmethod
    def _no_more(opts: dict[str, Any], dataset: str) -> None:
        if opts:
            raise TaskError(f"dataset {dataset!r} has no option(s) {sorted(opts)}")

    def network_io(self, data: Any) -> dict[str, Any]:
        return {"vocab_size": int(data.tokenizer.vocab_size)}

    def loader(
        self,
        data: Any,
        split: str,
        batch_size: int,
        *,
        train: bool,
        seed: int = 0,
        device: str | torch.device = "cpu",
        recipe: Any = None,
        channels_last: bool = False,
    ) -> TranslationLoader:
        return TranslationLoader(
            data.split(split), data.tokenizer, batch_size, train=train, seed=seed, device=device
        )

    # -- the step -------------------------------------------------------------------------

    def forward(self, model: Callable[..., Any], x: Any) -> torch.Tensor:
        src, tgt_in = x
        return model(src, tgt_in)

    def loss(self, output: torch.Tensor, y: Targets, recipe: Any) -> torch.Tensor:
        smooth = float(getattr(recipe, "label_smoothing", 0.0))
        return F.cross_entropy(
            output.float().flatten(0, 1),
            y.ids.flatten(),
            ignore_index=PAD_ID,
            label_smoothing=smooth,
        )

    def batch_size(self, y: Targets) -> int:
        return len(y)

    def decode(self, model: Any, src: torch.Tensor, max_len: int | None = None) -> list[list[int]]:
        """Token ids of the hypotheses for ``src`` (beam search, or greedy for beam 1)."""
        from nasforge.nn.seq2seq import beam_search, greedy_decode

        if self.beam == 1:
            return greedy_decode(model, src, max_len)
        return beam_search(model, src, self.beam, self.lenpen, max_len)

    def translate(self, model: Any, loader: Iterable[tuple[Any, Targets]]) -> list[str]:
        """Detokenized hypotheses of every batch of ``loader`` (model in eval mode)."""
        if isinstance(model, nn.Module):
            model.eval()
        hyps: list[str] = []
        for (src, _), y in loader:
            hyps += y.tokenizer.decode(self.decode(model, src))
        return hyps

    def evaluate_loss(self, model: Callable[..., Any], loader: Iterable[tuple[Any, Any]]) -> float:
        """The teacher-forced per-token cross-entropy over ``loader`` (no decoding)."""
        if isinstance(model, nn.Module):
            model.eval()
        loss_sum, ntok = 0.0, 0
        with torch.no_grad():
            for x, y in loader:
                loss_sum += _summed_token_ce(self.forward(model, x), y)
                ntok += int(y.ids.ne(PAD_ID).sum())
        return loss_sum / max(ntok, 1)

    def evaluate(
        self,
        model: Callable[..., Any],
        loader: Iterable[tuple[Any, Any]],
        *,
        autocast: Autocast | None = None,
    ) -> dict[str, float]:
        if isinstance(model, nn.Module):
            model.eval()
        ctx = autocast or contextlib.nullcontext
        loss_sum, ntok = 0.0, 0
        hyps: list[str] = []
        refs: list[str] = []
        with torch.no_grad():
            for (src, tgt_in), y in loader:
                with ctx():
                    logits = self.forward(model, (src, tgt_in))
                loss_sum += _summed_token_ce(logits, y)
                ntok += int(y.ids.ne(PAD_ID).sum())
                with ctx():
                    ids = self.decode(model, src)
                hyps += y.tokenizer.decode(ids)
                refs += y.refs
        if not refs:
            return {"bleu": 0.0, "loss": 0.0}
        bleu, self.bleu_signature = sacrebleu_corpus_bleu(hyps, refs)
        return {"bleu": bleu, "loss": loss_sum / max(ntok, 1)}


TASKS.register("translation")(TranslationTask)


@TASKS.register("translation-greedy")
def _translation_greedy() -> TranslationTask:
    """Translation scored with greedy decoding (faster evaluation)."""
    task = TranslationTask(beam=1)
    task.name = "translation-greedy"
    return task

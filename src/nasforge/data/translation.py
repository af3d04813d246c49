"""Parallel text for sequence-to-sequence tasks: readers, a subword tokenizer, an embedded
language task, and the padded batches a translation network trains on.

Readers
    :func:`read_parallel` reads WMT-style line-aligned files (``train.de`` / ``train.en``:
    line *i* of one is the translation of line *i* of the other); :func:`read_text_refs`
    reads a sacreBLEU-style plain-text test set (one segment per line) and
    :func:`read_sgm` the WMT "fake SGML" test sets (``newstest2014-deen-ref.de.sgm``),
    extracting every ``<seg ...>`` line exactly as sacreBLEU does
    (sacrebleu/dataset/fake_sgml.py:22-23, ``_clean`` in sacrebleu/dataset/base.py:66-73:
    the text between the tags, outer whitespace stripped, inner runs of whitespace made one
    space).

Tokenizer
    :func:`train_tokenizer` trains a SentencePiece model (BPE by default; one joint
    vocabulary of source and target, as the WMT En-De Transformer setups share theirs) on the
    *training* side only; ids 0-3 are pad / unk / bos / eos.

Embedded data
    ``numbers-en-de``: a deterministic rule-based English -> German task that needs no
    download (see :func:`numbers_en_de`). No package in the environment's package lists
    ships a real parallel corpus inside its wheel: sacreBLEU downloads its test sets, and
    NLTK's corpora (e.g. ``comtrans``) come from ``nltk.download``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nasforge.errors import DataError

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
#: SentencePiece model types :func:`train_tokenizer` accepts.
TOKENIZER_TYPES = ("bpe", "unigram")


# -- readers ---------------------------------------------------------------------------------


def read_lines(path: str | Path) -> list[str]:
    """The lines of a UTF-8 text file without their line ends (``\\n`` or ``\\r\\n``)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file; expected a UTF-8 text file, one segment per line")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{p} is not UTF-8 text (byte {e.start}); expected UTF-8") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line, it does not start another
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def read_sgm(path: str | Path) -> list[str]:
    """The segments of a WMT fake-SGML file (sacrebleu/dataset/fake_sgml.py:22-23)."""
    out = []
    for line in read_lines(path):
        if line.startswith("<seg "):
            seg = re.sub(r"<seg.*?>(.*)</seg>.*?", "\\1", line)
            out.append(re.sub(r"\s+", " ", seg.strip()))
    if not out:
        raise DataError(f"{path}: no <seg ...> lines; expected a WMT .sgm test set")
    return out


def read_text_refs(path: str | Path) -> list[str]:
    """A sacreBLEU-style test-set side: ``.sgm`` files through :func:`read_sgm`, anything
    else as plain text, one segment per line."""
    return read_sgm(path) if str(path).endswith(".sgm") else read_lines(path)


def read_parallel(src: str | Path, tgt: str | Path) -> tuple[list[str], list[str]]:
    """Two line-aligned sides (plain text or ``.sgm``); their segment counts must agree."""
    a, b = read_text_refs(src), read_text_refs(tgt)
    if len(a) != len(b):
        raise DataError(
            f"{src} has {len(a)} segments but {tgt} has {len(b)}; expected line-aligned "
            "parallel files of equal length"
        )
    return a, b


def find_side(directory: Path, names: Sequence[str], lang: str) -> Path | None:
    """The first of ``NAME.LANG`` / ``NAME.LANG.sgm`` that exists in ``directory``."""
    for n in names:
        for suffix in ("", ".sgm"):
            p = directory / f"{n}.{lang}{suffix}"
            if p.is_file():
                return p
    return None


#: File stems of each split in a parallel-text directory, in the order they are tried.
SPLIT_STEMS: dict[str, tuple[str, ...]] = {
    "train": ("train",),
    "valid": ("valid", "dev"),
    "test": ("test",),
}


def read_parallel_dir(directory: str | Path, src: str, tgt: str) -> dict[str, tuple]:
    """``{split: (sources, references)}`` from ``DIR/train.SRC`` + ``DIR/train.TGT``,
    ``DIR/valid.*`` (or ``dev.*``) and ``DIR/test.*`` (plain text or ``.sgm``). Train and
    test are required; without a valid split the caller carves one from train."""
    d = Path(directory)
    if not d.is_dir():
        raise DataError(f"--data-dir {d}: not a directory; expected train.{src}/train.{tgt} ...")
    out: dict[str, tuple] = {}
    for split, stems in SPLIT_STEMS.items():
        s, t = find_side(d, stems, src), find_side(d, stems, tgt)
        if s is None or t is None:
            if split == "valid":
                continue
            missing = f"{stems[0]}.{src if s is None else tgt}"
            raise DataError(f"{d}: no {missing} (or .sgm); expected the {split} side there")
        out[split] = read_parallel(s, t)
    return out


# -- the embedded language task ------------------------------------------------------------

_EN_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_EN_TEENS = [
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_EN_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_DE_ONES = ["null", "ein", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun"]
_DE_TEENS = [
    "zehn",
    "elf",
    "zwölf",
    "dreizehn",
    "vierzehn",
    "fünfzehn",
    "sechzehn",
    "siebzehn",
    "achtzehn",
    "neunzehn",
]
_DE_TENS = [
    "_",
    "_",
    "zwanzig",
    "dreißig",
    "vierzig",
    "fünfzig",
    "sechzig",
    "siebzig",
    "achtzig",
    "neunzig",
]


def english_number(n: int) -> str:
    """1 <= n <= 999 in American English words ("three hundred forty-two")."""
    parts = []
    if n >= 100:
        parts.append(f"{_EN_ONES[n // 100]} hundred")
        n %= 100
    if n >= 20:
        parts.append(_EN_TENS[n // 10] + (f"-{_EN_ONES[n % 10]}" if n % 10 else ""))
    elif n >= 10:
        parts.append(_EN_TEENS[n - 10])
    elif n:
        parts.append(_EN_ONES[n])
    return " ".join(parts)


def german_number(n: int) -> str:
    """2 <= n <= 999 as one German word: units before tens ("dreihundertzweiundvierzig")."""
    out = ""
    if n >= 100:
        out += _DE_ONES[n // 100] + "hundert"
        n %= 100
    if n >= 20:
        unit = n % 10
        out += (_DE_ONES[unit] + "und" if unit else "") + _DE_TENS[n // 10]
    elif n >= 10:
        out += _DE_TEENS[n - 10]
    elif n == 1:
        out += "eins"  # only inside hundreds (101 = hunderteins); 1 alone takes the article
    elif n:
        out += _DE_ONES[n]
    return out


# (English singular, English plural, German singular, German plural, gender m/f/n)
_NOUNS = (
    ("apple", "apples", "Apfel", "Äpfel", "m"),
    ("pear", "pears", "Birne", "Birnen", "f"),
    ("book", "books", "Buch", "Bücher", "n"),
    ("dog", "dogs", "Hund", "Hunde", "m"),
    ("cat", "cats", "Katze", "Katzen", "f"),
    ("house", "houses", "Haus", "Häuser", "n"),
    ("chair", "chairs", "Stuhl", "Stühle", "m"),
    ("lamp", "lamps", "Lampe", "Lampen", "f"),
    ("car", "cars", "Auto", "Autos", "n"),
    ("bird", "birds", "Vogel", "Vögel", "m"),
    ("flower", "flowers", "Blume", "Blumen", "f"),
    ("table", "tables", "Tisch", "Tische", "m"),
)
# (English, German stem); adjective endings follow the German declension below.
_ADJECTIVES = (
    ("red", "rot"),
    ("green", "grün"),
    ("small", "klein"),
    ("big", "groß"),
    ("old", "alt"),
    ("new", "neu"),
    ("cheap", "billig"),
    ("beautiful", "schön"),
)
# (English 3sg, English base, German forms for ich/du/er-sie/wir/ihr/sie-Pl.)
_VERBS = (
    ("has", "have", ("habe", "hast", "hat", "haben", "habt", "haben")),
    ("sees", "see", ("sehe", "siehst", "sieht", "sehen", "seht", "sehen")),
    ("buys", "buy", ("kaufe", "kaufst", "kauft", "kaufen", "kauft", "kaufen")),
    ("sells", "sell", ("verkaufe", "verkaufst", "verkauft", "verkaufen", "verkauft", "verkaufen")),
    ("paints", "paint", ("male", "malst", "malt", "malen", "malt", "malen")),
    ("wants", "want", ("will", "willst", "will", "wollen", "wollt", "wollen")),
)
# (English subject, German subject, German person index, English takes 3sg)
_SUBJECTS = (
    ("I", "ich", 0, False),
    ("you", "du", 1, False),
    ("he", "er", 2, True),
    ("she", "sie", 2, True),
    ("we", "wir", 3, False),
    ("they", "sie", 5, False),
    ("Anna", "Anna", 2, True),
    ("the teacher", "der Lehrer", 2, True),
)
_ADVERBS = (("today", "heute"), ("tomorrow", "morgen"), ("now", "jetzt"), ("often", "oft"))
#: German accusative indefinite article and strong adjective ending, by gender (for "one").
_ONE = {"m": ("einen", "en"), "f": ("eine", "e"), "n": ("ein", "es")}


def numbers_sentence(rng: np.random.Generator, max_number: int) -> tuple[str, str]:
    """One English sentence and its German translation.

    "[ADV] SUBJ VERB NUM [ADJ] NOUN" -> "[ADV VERB SUBJ | SUBJ VERB] NUM [ADJ+ending] NOUN":
    numbers are reordered inside the word (zweiundvierzig), the verb agrees with the
    subject, a fronted adverb moves the verb before the subject (German verb-second), and
    the count selects the article, adjective ending and plural form by the noun's gender.
    """
    subj_en, subj_de, person, third = _SUBJECTS[rng.integers(len(_SUBJECTS))]
    v3, vbase, vde = _VERBS[rng.integers(len(_VERBS))]
    sg, pl, de_sg, de_pl, gender = _NOUNS[rng.integers(len(_NOUNS))]
    n = int(rng.integers(1, max_number + 1))
    use_adj = bool(rng.random() < 0.6)
    adj_en, adj_de = _ADJECTIVES[rng.integers(len(_ADJECTIVES))]
    adverb = _ADVERBS[rng.integers(len(_ADVERBS))] if rng.random() < 0.3 else None
    verb_en = v3 if third else vbase
    verb_de = vde[person]
    if n == 1:
        article, ending = _ONE[gender]
        obj_en = "one " + (f"{adj_en} " if use_adj else "") + sg
        obj_de = article + " " + (f"{adj_de}{ending} " if use_adj else "") + de_sg
    else:
        obj_en = english_number(n) + " " + (f"{adj_en} " if use_adj else "") + pl
        obj_de = german_number(n) + " " + (f"{adj_de}e " if use_adj else "") + de_pl
    if adverb is None:
        en = f"{subj_en} {verb_en} {obj_en}"
        de = f"{subj_de} {verb_de} {obj_de}"
    else:
        en = f"{adverb[0]} {subj_en} {verb_en} {obj_en}"
        de = f"{adverb[1]} {verb_de} {subj_de} {obj_de}"
    en = en[0].upper() + en[1:] + "."
    de = de[0].upper() + de[1:] + "."
    return en, de


def numbers_en_de(
    n_train: int = 4000,
    n_valid: int = 200,
    n_test: int = 200,
    *,
    seed: int = 0,
    max_number: int = 999,
) -> dict[str, tuple[list[str], list[str]]]:
    """The embedded ``numbers-en-de`` corpus: ``{split: (english, german)}``.

    Sentences are drawn from :func:`numbers_sentence` with ``np.random.default_rng(seed)``;
    the three splits share no English sentence (test first, then valid, then train, each
    skipping sentences an earlier split holds), so BLEU measures generalisation to unseen
    combinations.
    """
    if max_number < 1 or max_number > 999:
        raise DataError(f"max_number={max_number}; expected 1..999")
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    out: dict[str, tuple[list[str], list[str]]] = {}
    for split, n in (("test", n_test), ("valid", n_valid), ("train", n_train)):
        src: list[str] = []
        tgt: list[str] = []
        tries = 0
        while len(src) < n:
            tries += 1
            if tries > 50 * n + 1000:
                raise DataError(
                    f"numbers-en-de: could not draw {n} distinct {split} sentences with "
                    f"max_number={max_number}; expected fewer sentences or a larger range"
                )
            en, de = numbers_sentence(rng, max_number)
            if en in seen:
                continue
            seen.add(en)
            src.append(en)
            tgt.append(de)
        out[split] = (src, tgt)
    return {k: out[k] for k in ("train", "valid", "test")}


# -- tokenizer -------------------------------------------------------------------------------


def train_tokenizer(texts: Sequence[str], vocab_size: int, *, model_type: str = "bpe") -> bytes:
    """A SentencePiece model (its serialized proto) trained on ``texts``.

    ``vocab_size`` is an upper bound (``hard_vocab_limit=False``: a small corpus yields
    fewer pieces rather than an error). One thread, so the model is a function of the texts.
    """
    import io

    import sentencepiece as spm

    if model_type not in TOKENIZER_TYPES:
        raise DataError(f"tokenizer type {model_type!r}; expected one of {TOKENIZER_TYPES}")
    if not isinstance(vocab_size, int) or vocab_size < 8:
        raise DataError(f"vocab_size={vocab_size!r}; expected an int >= 8")
    if not any(t.strip() for t in texts):
        raise DataError("the training side is empty; a tokenizer needs text to learn from")
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(list(texts)),
        model_writer=buf,
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=1.0,
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        hard_vocab_limit=False,
        num_threads=1,
        minloglevel=2,
    )
    return buf.getvalue()


class Tokenizer:
    """A trained SentencePiece model: text <-> ids (ids 0-3: pad, unk, bos, eos)."""

    def __init__(self, proto: bytes) -> None:
        import sentencepiece as spm

        self.proto = proto
        self._sp = spm.SentencePieceProcessor(model_proto=proto)

    @property
    def vocab_size(self) -> int:
        return int(self._sp.get_piece_size())

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [list(ids) for ids in self._sp.encode(list(texts))]

    def decode(self, ids: Sequence[Sequence[int]]) -> list[str]:
        return [str(s) for s in self._sp.decode([[int(i) for i in x] for x in ids])]

    def pieces(self, text: str) -> list[str]:
        return list(self._sp.encode(text, out_type=str))

    # Pickling (run records, Ray) keeps the proto only.
    def __getstate__(self) -> dict[str, Any]:
        return {"proto": self.proto}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["proto"])  # type: ignore[misc]


# -- splits and batches ----------------------------------------------------------------------


@dataclass
class ParallelSplit:
    """One split: raw source and reference text plus their token ids (no bos/eos)."""

    src: list[str]
    ref: list[str]
    src_ids: list[list[int]]
    ref_ids: list[list[int]]

    def __len__(self) -> int:
        return len(self.src)


@dataclass
class TranslationData:
    """What the translation task's ``load`` returns (a :class:`~nasforge.tasks.TaskData`)."""

    name: str
    train: ParallelSplit
    evals: dict[str, ParallelSplit]
    tokenizer: Tokenizer
    src_lang: str
    tgt_lang: str
    max_len: int
    info: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, int]:
        return {"train": len(self.train), **{k: len(v) for k, v in self.evals.items()}}

    def fingerprint(self) -> str:
        """A short hash of the tokenizer and of every split's text (checkpoint identity)."""
        import hashlib

        h = hashlib.blake2b(self.tokenizer.proto, digest_size=12)
        for name, sp in [("train", self.train), *self.evals.items()]:
            h.update(f"|{name}:{len(sp)}|".encode())
            for s, r in zip(sp.src, sp.ref, strict=True):
                h.update(f"{s}\t{r}\n".encode())
        return h.hexdigest()

    def split(self, name: str) -> ParallelSplit:
        if name == "train":
            return self.train
        if name not in self.evals:
            raise DataError(
                f"{self.name} has no split {name!r}; expected train or one of {list(self.evals)}"
            )
        return self.evals[name]


def make_split(
    src: list[str], ref: list[str], tok: Tokenizer, max_len: int, *, drop_long: bool
) -> ParallelSplit:
    """Tokenize a split. Training pairs longer than ``max_len`` tokens with eos (either side) are
    dropped, as fairseq's ``--max-source/target-positions`` filter does; evaluation
    sources are truncated instead so that every reference is scored."""
    s_ids, r_ids = tok.encode(src), tok.encode(ref)
    keep = [
        i
        for i in range(len(src))
        if not drop_long or (len(s_ids[i]) + 1 <= max_len and len(r_ids[i]) + 1 <= max_len)
    ]
    return ParallelSplit(
        [src[i] for i in keep],
        [ref[i] for i in keep],
        [s_ids[i][: max_len - 1] for i in keep],
        [r_ids[i][: max_len - 1] for i in keep],
    )


@dataclass
class Targets:
    """The ``y`` of a translation batch: shifted target ids (``PAD_ID`` where padded), the
    raw reference strings (scored by sacreBLEU), the raw sources and the tokenizer that
    turns hypotheses back into text."""

    ids: torch.Tensor
    refs: list[str]
    srcs: list[str]
    tokenizer: Tokenizer

    def __len__(self) -> int:
        return len(self.refs)


def pad_batch(seqs: Sequence[Sequence[int]], device: Any) -> torch.Tensor:
    """``[B, max_len]`` int64 ids, right-padded with ``PAD_ID`` (at least one column)."""
    width = max(1, max((len(s) for s in seqs), default=1))
    out = torch.full((len(seqs), width), PAD_ID, dtype=torch.long)
    for i, s in enumerate(seqs):
        if s:
            out[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    return out.to(device)


class TranslationLoader:
    """Batches of one split: ``x = (src, tgt_in)`` (``tgt_in`` = bos + reference ids) and
    ``y = Targets(ids = reference ids + eos, ...)``; training batches are reshuffled each
    epoch from ``(seed, epoch)``, evaluation batches come in split order."""

    def __init__(
        self,
        split: ParallelSplit,
        tokenizer: Tokenizer,
        batch_size: int,
        *,
        train: bool,
        seed: int = 0,
        device: Any = "cpu",
    ) -> None:
        self.split, self.tokenizer = split, tokenizer
        self.batch_size, self.train = int(batch_size), train
        self.seed, self.device, self.epoch = int(seed), device, 0

    @property
    def num_samples(self) -> int:
        return len(self.split)

    def __len__(self) -> int:
        return -(-len(self.split) // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[tuple[tuple[torch.Tensor, torch.Tensor], Targets]]:
        n = len(self.split)
        if self.train:
            g = np.random.default_rng([self.seed, self.epoch])
            order = g.permutation(n)
        else:
            order = np.arange(n)
        sp = self.split
        for s in range(0, n, self.batch_size):
            idx = order[s : s + self.batch_size].tolist()
            # Sources end with eos, as fairseq's do (so no source is empty).
            src = pad_batch([[*sp.src_ids[i], EOS_ID] for i in idx], self.device)
            tgt_in = pad_batch([[BOS_ID, *sp.ref_ids[i]] for i in idx], self.device)
            tgt_out = pad_batch([[*sp.ref_ids[i], EOS_ID] for i in idx], self.device)
            refs, srcs = [sp.ref[i] for i in idx], [sp.src[i] for i in idx]
            yield (src, tgt_in), Targets(tgt_out, refs, srcs, self.tokenizer)

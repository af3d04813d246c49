"""The DARTS cell search space (Liu et al., ICLR 2019), as PC-DARTS searches it.

A :class:`Genotype` describes a normal and a reduction cell. Each cell has two inputs (the
outputs of the two previous cells, nodes 0 and 1) and ``steps`` intermediate nodes; node
``2 + i`` sums two ``(op, input)`` pairs whose inputs are earlier nodes (``0 .. 1 + i``).
The cell output concatenates the nodes listed in ``*_concat``. In the DARTS space
``steps == 4``, ops come from the 8 :data:`PRIMITIVES` and the concat is ``range(2, 6)``;
the genotypes of other papers shipped by the DARTS repository (NASNet, AmoebaNet: 5
nodes, ``sep_conv_7x7``, ``conv_7x1_1x7``) are valid :class:`Genotype` values too (the
evaluation networks build them), but not members of :class:`DartsSpace`.

Interchange formats:

* DARTS's own repr, as ``train_search.py`` logs it and ``genotypes.py`` holds it::

    Genotype(normal=[('sep_conv_3x3', 1), ...], normal_concat=range(2, 6),
             reduce=[...], reduce_concat=range(2, 6))

  parsed by a small tokenizer and recursive-descent parser here (never ``eval``);
  ``[2, 3, 4, 5]`` concat lists, keyword or positional fields, a leading ``NAME =`` and
  ``#`` comments are accepted, so genotypes paste in straight from ``genotypes.py``.
* JSON: ``{"normal": [["sep_conv_3x3", 1], ...], "normal_concat": [2, 3, 4, 5], ...}``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nasforge.errors import ArchError
from nasforge.inputs import excerpt, parse_json
from nasforge.spaces import SPACES

#: The 8 candidate ops of the DARTS space, in the official order (darts cnn/genotypes.py:5-14).
PRIMITIVES: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
#: Ops the official ``operations.py`` also builds, used only by NASNet / AmoebaNet.
EXTRA_OPS: tuple[str, ...] = ("sep_conv_7x7", "conv_7x1_1x7")
#: Every op a :class:`Genotype` may name.
ALL_OPS: tuple[str, ...] = PRIMITIVES + EXTRA_OPS
#: The ops DARTS's derivation can pick (``none`` is excluded when a genotype is derived).
DERIVABLE_OPS: tuple[str, ...] = PRIMITIVES[1:]
#: Intermediate nodes per cell in the DARTS space.
STEPS = 4
#: The DARTS space's concat: every intermediate node.
DARTS_CONCAT: tuple[int, ...] = tuple(range(2, 2 + STEPS))
#: Edges j -> i of one DARTS cell (i = 2..5, j < i), in the order DARTS's alphas use.
CELL_EDGES: tuple[tuple[int, int], ...] = tuple(
    (i, j) for i in range(2, 2 + STEPS) for j in range(i)
)

EXPECTED_FORM = (
    "Genotype(normal=[('op', input), ...], normal_concat=range(2, 6), "
    "reduce=[('op', input), ...], reduce_concat=range(2, 6))"
)

Pair = tuple[str, int]


#: Most intermediate nodes a genotype cell may have (DARTS: 4); bounds what a parsed
#: genotype can ask the network builder for.
MAX_STEPS = 64
#: Longest genotype text read (characters): a DARTS repr is about 400.
MAX_GENOTYPE_CHARS = 100_000


class GenotypeError(ArchError):
    """A DARTS genotype string, JSON or value that is malformed or outside the space."""


def _check_cell(kind: str, pairs: Any, concat: Any) -> tuple[tuple[Pair, ...], tuple[int, ...]]:
    """Validated ``(pairs, concat)`` of one cell as tuples; raises :class:`GenotypeError`."""
    if isinstance(pairs, (list, tuple)) and len(pairs) > 2 * MAX_STEPS:
        raise GenotypeError(
            f"{kind} has {len(pairs)} (op, input) pairs; expected at most {2 * MAX_STEPS} "
            f"(2 per intermediate node, 8 in the DARTS space)"
        )
    if not isinstance(pairs, (list, tuple)) or not pairs or len(pairs) % 2:
        n = len(pairs) if isinstance(pairs, (list, tuple)) else type(pairs).__name__
        raise GenotypeError(
            f"{kind} has {n} (op, input) pairs; expected an even, non-zero number "
            f"(2 per intermediate node, 8 in the DARTS space)"
        )
    out: list[Pair] = []
    for k, pair in enumerate(pairs):
        if (
            not isinstance(pair, (list, tuple))
            or len(pair) != 2
            or not isinstance(pair[0], str)
            or isinstance(pair[1], bool)
            or not isinstance(pair[1], (int, np.integer))
        ):
            raise GenotypeError(
                f"{kind} pair {k} is {pair!r}; expected ('op', input) with an op name and an int"
            )
        op, inp = pair[0], int(pair[1])
        if op not in ALL_OPS:
            raise GenotypeError(
                f"unknown op {op!r} in {kind} pair {k}; expected one of {list(ALL_OPS)}"
            )
        node = k // 2
        if not 0 <= inp < node + 2:
            raise GenotypeError(
                f"{kind} pair {k} ({op!r}, {inp}) feeds node {node + 2} from node {inp}, which "
                f"is not available yet; expected an input in 0..{node + 1}"
            )
        out.append((op, inp))
    steps = len(out) // 2
    if isinstance(concat, (list, tuple, range)) and len(concat) > steps + 2:
        # before list(range(...)): range(0, 10**9) must not be built to be refused
        raise GenotypeError(
            f"{kind}_concat has {len(concat)} node ids ({excerpt(concat)}); a cell of {steps} "
            f"intermediate nodes has {steps + 2} nodes, so at most {steps + 2} distinct ids"
        )
    if isinstance(concat, range):
        concat = list(concat)
    if (
        not isinstance(concat, (list, tuple))
        or not concat
        or any(isinstance(c, bool) or not isinstance(c, (int, np.integer)) for c in concat)
    ):
        raise GenotypeError(
            f"{kind}_concat is {concat!r}; expected a non-empty list of node ids or range(2, 6)"
        )
    cat = tuple(int(c) for c in concat)
    bad = [c for c in cat if not 0 <= c < steps + 2]
    if bad or len(set(cat)) != len(cat):
        raise GenotypeError(
            f"{kind}_concat {list(cat)} names node {bad[0] if bad else 'twice'}; expected "
            f"distinct node ids in 0..{steps + 1}"
        )
    return tuple(out), cat


@dataclass(frozen=True, slots=True)
class Genotype:
    """A DARTS-style genotype: immutable, hashable, validated on construction.

    ``normal`` / ``reduce`` are tuples of ``(op, input)`` pairs, two per intermediate node
    (node ``2 + k // 2`` for pair ``k``); ``normal_concat`` / ``reduce_concat`` are the node
    ids concatenated into the cell output. Lists and ``range`` objects are accepted and
    stored as tuples.
    """

    normal: tuple[Pair, ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[Pair, ...]
    reduce_concat: tuple[int, ...]

    def __post_init__(self) -> None:
        for kind in ("normal", "reduce"):
            pairs, concat = _check_cell(kind, getattr(self, kind), getattr(self, f"{kind}_concat"))
            object.__setattr__(self, kind, pairs)
            object.__setattr__(self, f"{kind}_concat", concat)

    # -- views ----------------------------------------------------------------------------
    @property
    def steps(self) -> tuple[int, int]:
        """Intermediate nodes of the (normal, reduce) cell."""
        return len(self.normal) // 2, len(self.reduce) // 2

    def cell(self, reduction: bool) -> tuple[tuple[Pair, ...], tuple[int, ...]]:
        """``(pairs, concat)`` of the reduction (``True``) or normal cell."""
        return (self.reduce, self.reduce_concat) if reduction else (self.normal, self.normal_concat)

    def to_string(self) -> str:
        """DARTS's repr; a contiguous concat prints as ``range(a, b)`` (as derived genotypes do)."""

        def pairs(ps: tuple[Pair, ...]) -> str:
            return "[" + ", ".join(f"({op!r}, {i})" for op, i in ps) + "]"

        def concat(c: tuple[int, ...]) -> str:
            if c == tuple(range(c[0], c[0] + len(c))):
                return f"range({c[0]}, {c[0] + len(c)})"
            return "[" + ", ".join(str(i) for i in c) + "]"

        return (
            f"Genotype(normal={pairs(self.normal)}, normal_concat={concat(self.normal_concat)}, "
            f"reduce={pairs(self.reduce)}, reduce_concat={concat(self.reduce_concat)})"
        )

    def __str__(self) -> str:
        return self.to_string()

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: lists of ``[op, input]`` pairs and concat lists."""
        return {
            "normal": [[op, i] for op, i in self.normal],
            "normal_concat": list(self.normal_concat),
            "reduce": [[op, i] for op, i in self.reduce],
            "reduce_concat": list(self.reduce_concat),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: Any) -> Genotype:
        """Inverse of :meth:`to_dict`."""
        if not isinstance(d, Mapping):
            raise GenotypeError(
                f"a genotype JSON must be an object, got {type(d).__name__}; expected keys "
                f"{list(_FIELDS)}"
            )
        keys = set(d)
        if keys != set(_FIELDS):
            missing, extra = sorted(set(_FIELDS) - keys), sorted(keys - set(_FIELDS))
            raise GenotypeError(
                f"genotype JSON has missing keys {missing} / unknown keys {extra}; expected "
                f"exactly {list(_FIELDS)}"
            )
        return cls(**{k: d[k] for k in _FIELDS})

    @classmethod
    def from_json(cls, text: str) -> Genotype:
        _check_length(text)
        return cls.from_dict(parse_json(text, "genotype JSON", GenotypeError))

    @classmethod
    def from_string(cls, text: str) -> Genotype:
        """Parse DARTS's repr (see the module docstring for what is accepted)."""
        if not isinstance(text, str):
            raise GenotypeError(f"genotype must be a str, got {type(text).__name__}")
        _check_length(text)
        return cls.from_dict(_Parser(text).genotype())

    @classmethod
    def parse(cls, value: Genotype | str | Mapping[str, Any]) -> Genotype:
        """A :class:`Genotype`, a published name (:data:`PUBLISHED`), DARTS's repr or JSON."""
        if isinstance(value, Genotype):
            return value
        if isinstance(value, Mapping):
            return cls.from_dict(value)
        if isinstance(value, str):
            text = value.strip()
            if text in PUBLISHED:
                return PUBLISHED[text]
            if text.startswith("{"):
                return cls.from_json(text)
            if re.fullmatch(r"[A-Za-z_]\w*", text):
                raise GenotypeError(
                    f"unknown genotype name {text!r}; expected one of {sorted(PUBLISHED)}, "
                    f"a repr {EXPECTED_FORM} or its JSON form"
                )
            return cls.from_string(text)
        raise GenotypeError(
            f"cannot interpret {value!r} as a genotype; expected a name, a repr or JSON"
        )


_FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")


def _check_length(text: str) -> None:
    if len(text) > MAX_GENOTYPE_CHARS:
        raise GenotypeError(
            f"genotype text of {len(text)} characters ({excerpt(text)}); expected at most "
            f"{MAX_GENOTYPE_CHARS} (a DARTS genotype is about 400)"
        )


# -- the repr parser ----------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<comment>\#[^\n]*)
      | (?P<str>'[^'\\\n]*'|"[^"\\\n]*")
      | (?P<int>-?\d+)
      | (?P<name>[A-Za-z_][\w.]*)
      | (?P<punct>[()\[\],=])
    )""",
    re.VERBOSE,
)


class _Parser:
    """Recursive descent over the tokens of ``Genotype(...)``; builds the JSON form."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        end = len(text.rstrip())
        while pos < end:
            m = _TOKEN_RE.match(text, pos)
            if m is None or m.end() == pos:
                snippet = text[pos : pos + 20].strip()
                raise GenotypeError(
                    f"unexpected text {snippet!r} at position {pos} of the genotype; "
                    f"expected the form {EXPECTED_FORM}"
                )
            kind = m.lastgroup or ""
            if kind == "int" and len(m.group(kind).lstrip("-")) > 6:
                raise GenotypeError(
                    f"integer {excerpt(m.group(kind), 20)} at position {m.start(kind)} of the "
                    f"genotype has {len(m.group(kind).lstrip('-'))} digits; node ids are small "
                    f"(0..{MAX_STEPS + 1})"
                )
            if kind != "comment":
                self.tokens.append((kind, m.group(kind), m.start(kind)))
            pos = m.end()
        self.i = 0

    def _peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _fail(self, expected: str) -> GenotypeError:
        tok = self._peek()
        got = f"{tok[1]!r} at position {tok[2]}" if tok else "the end of the text"
        return GenotypeError(
            f"genotype parse error: got {got}, expected {expected}; the form is {EXPECTED_FORM}"
        )

    def _take(self, kind: str, value: str | None = None, expected: str | None = None) -> str:
        tok = self._peek()
        if tok is None or tok[0] != kind or (value is not None and tok[1] != value):
            raise self._fail(expected or repr(value) if value else expected or kind)
        self.i += 1
        return tok[1]

    def _is(self, kind: str, value: str | None = None) -> bool:
        tok = self._peek()
        return tok is not None and tok[0] == kind and (value is None or tok[1] == value)

    def genotype(self) -> dict[str, Any]:
        # Optional "NAME =" as in genotypes.py.
        if (
            self._is("name")
            and self.i + 1 < len(self.tokens)
            and self.tokens[self.i + 1][:2] == ("punct", "=")
        ):
            self.i += 2
        name = self._take("name", expected="'Genotype('")
        if name.rsplit(".", 1)[-1] != "Genotype":
            self.i -= 1
            raise self._fail("'Genotype('")
        self._take("punct", "(")
        fields: dict[str, Any] = {}
        positional = 0
        while not self._is("punct", ")"):
            if (
                self._is("name")
                and self.i + 1 < len(self.tokens)
                and self.tokens[self.i + 1][:2] == ("punct", "=")
            ):
                key = self._take("name")
                if key not in _FIELDS:
                    self.i -= 1
                    raise self._fail(f"a field name out of {list(_FIELDS)}")
                self._take("punct", "=")
            else:
                if fields and positional < len(fields):
                    raise self._fail("a keyword field (no positional field after keywords)")
                if positional >= len(_FIELDS):
                    raise self._fail("')' (a genotype has 4 fields)")
                key = _FIELDS[positional]
                positional += 1
            if key in fields:
                self.i -= 2
                raise self._fail(f"each field once ({key!r} repeats)")
            fields[key] = self._concat() if key.endswith("concat") else self._pairs()
            if not self._is("punct", ")"):
                self._take("punct", ",", expected="',' or ')'")
        self._take("punct", ")")
        if self._peek() is not None:
            raise self._fail("the end of the text after 'Genotype(...)'")
        missing = [f for f in _FIELDS if f not in fields]
        if missing:
            raise GenotypeError(
                f"genotype lacks field(s) {missing}; expected the form {EXPECTED_FORM}"
            )
        return fields

    def _pairs(self) -> list[list[Any]]:
        self._take("punct", "[", expected="'[' opening a list of ('op', input) pairs")
        out: list[list[Any]] = []
        while not self._is("punct", "]"):
            if len(out) >= 2 * MAX_STEPS:
                raise self._fail(f"']' (a cell has at most {2 * MAX_STEPS} pairs)")
            self._take("punct", "(", expected="'(' opening an ('op', input) pair or ']'")
            op = self._take("str", expected="a quoted op name")[1:-1]
            self._take("punct", ",", expected="',' inside an ('op', input) pair")
            inp = int(self._take("int", expected="an input node index"))
            self._take("punct", ")", expected="')' closing an ('op', input) pair")
            out.append([op, inp])
            if not self._is("punct", "]"):
                self._take("punct", ",", expected="',' or ']'")
        self._take("punct", "]")
        return out

    def _concat(self) -> list[int]:
        if self._is("name", "range"):
            self.i += 1
            self._take("punct", "(")
            args = [int(self._take("int", expected="an int argument of range()"))]
            if self._is("punct", ","):
                self.i += 1
                args.append(int(self._take("int", expected="an int argument of range()")))
            self._take("punct", ")", expected="')' closing range(a, b)")
            span = range(*args)
            if len(span) > MAX_STEPS + 2:  # checked before the list is built
                raise GenotypeError(
                    f"concat range({', '.join(map(str, args))}) names {len(span)} nodes; a "
                    f"cell has at most {MAX_STEPS + 2} (DARTS: range(2, 6))"
                )
            return list(span)
        self._take("punct", "[", expected="a concat list [2, 3, 4, 5] or range(2, 6)")
        out: list[int] = []
        while not self._is("punct", "]"):
            if len(out) > MAX_STEPS + 2:
                raise self._fail(f"']' (a concat lists at most {MAX_STEPS + 2} nodes)")
            out.append(int(self._take("int", expected="a node index")))
            if not self._is("punct", "]"):
                self._take("punct", ",", expected="',' or ']'")
        self._take("punct", "]")
        return out


# -- published genotypes --------------------------------------------------------------------


def _g(
    normal: str, normal_concat: Sequence[int], reduce: str, reduce_concat: Sequence[int]
) -> Genotype:
    """Compact constructor: cells written as ``op:input op:input ...``."""

    def cell(s: str) -> list[Pair]:
        return [(op, int(i)) for op, i in (t.split(":") for t in s.split())]

    return Genotype(cell(normal), tuple(normal_concat), cell(reduce), tuple(reduce_concat))


#: Genotypes by the names the official repositories give them. Typed in from
#: quark0/darts cnn/genotypes.py (NASNet, AmoebaNet, DARTS_V1, DARTS_V2) and
#: yuhuixu1993/PC-DARTS genotypes.py (the same four, plus PC_DARTS_cifar, PC_DARTS_image);
#: ``DARTS`` and ``PCDARTS`` are the aliases both files define. The repositories ship no
#: ENAS genotype.
PUBLISHED: dict[str, Genotype] = {
    # darts cnn/genotypes.py:16-44 (PC-DARTS genotypes.py:16-44): Zoph et al. 2018, 5 nodes.
    "NASNet": _g(
        "sep_conv_5x5:1 sep_conv_3x3:0 sep_conv_5x5:0 sep_conv_3x3:0 avg_pool_3x3:1 "
        "skip_connect:0 avg_pool_3x3:0 avg_pool_3x3:0 sep_conv_3x3:1 skip_connect:1",
        [2, 3, 4, 5, 6],
        "sep_conv_5x5:1 sep_conv_7x7:0 max_pool_3x3:1 sep_conv_7x7:0 avg_pool_3x3:1 "
        "sep_conv_5x5:0 skip_connect:3 avg_pool_3x3:2 sep_conv_3x3:2 max_pool_3x3:1",
        [4, 5, 6],
    ),
    # darts cnn/genotypes.py:46-73 (PC-DARTS genotypes.py:46-73): Real et al. 2019, 5 nodes.
    "AmoebaNet": _g(
        "avg_pool_3x3:0 max_pool_3x3:1 sep_conv_3x3:0 sep_conv_5x5:2 sep_conv_3x3:0 "
        "avg_pool_3x3:3 sep_conv_3x3:1 skip_connect:1 skip_connect:0 avg_pool_3x3:1",
        [4, 5, 6],
        "avg_pool_3x3:0 sep_conv_3x3:1 max_pool_3x3:0 sep_conv_7x7:2 sep_conv_7x7:0 "
        "avg_pool_3x3:1 max_pool_3x3:0 max_pool_3x3:1 conv_7x1_1x7:0 sep_conv_3x3:5",
        [3, 4, 6],
    ),
    # darts cnn/genotypes.py:75 (first-order DARTS).
    "DARTS_V1": _g(
        "sep_conv_3x3:1 sep_conv_3x3:0 skip_connect:0 sep_conv_3x3:1 skip_connect:0 "
        "sep_conv_3x3:1 sep_conv_3x3:0 skip_connect:2",
        DARTS_CONCAT,
        "max_pool_3x3:0 max_pool_3x3:1 skip_connect:2 max_pool_3x3:0 max_pool_3x3:0 "
        "skip_connect:2 skip_connect:2 avg_pool_3x3:0",
        DARTS_CONCAT,
    ),
    # darts cnn/genotypes.py:76 (second-order DARTS, the paper's 2.76% / 3.3M cell).
    "DARTS_V2": _g(
        "sep_conv_3x3:0 sep_conv_3x3:1 sep_conv_3x3:0 sep_conv_3x3:1 sep_conv_3x3:1 "
        "skip_connect:0 skip_connect:0 dil_conv_3x3:2",
        DARTS_CONCAT,
        "max_pool_3x3:0 max_pool_3x3:1 skip_connect:2 max_pool_3x3:1 max_pool_3x3:0 "
        "skip_connect:2 skip_connect:2 max_pool_3x3:1",
        DARTS_CONCAT,
    ),
    # PC-DARTS genotypes.py:80 (searched on CIFAR-10: 2.57% error, 3.6M params).
    "PC_DARTS_cifar": _g(
        "sep_conv_3x3:1 skip_connect:0 sep_conv_3x3:0 dil_conv_3x3:1 sep_conv_5x5:0 "
        "sep_conv_3x3:1 avg_pool_3x3:0 dil_conv_3x3:1",
        DARTS_CONCAT,
        "sep_conv_5x5:1 max_pool_3x3:0 sep_conv_5x5:1 sep_conv_5x5:2 sep_conv_3x3:0 "
        "sep_conv_3x3:3 sep_conv_3x3:1 sep_conv_3x3:2",
        DARTS_CONCAT,
    ),
    # PC-DARTS genotypes.py:81 (searched on ImageNet: 24.2% top-1 error, 5.3M params).
    "PC_DARTS_image": _g(
        "skip_connect:1 sep_conv_3x3:0 sep_conv_3x3:0 skip_connect:1 sep_conv_3x3:1 "
        "sep_conv_3x3:3 sep_conv_3x3:1 dil_conv_5x5:4",
        DARTS_CONCAT,
        "sep_conv_3x3:0 skip_connect:1 dil_conv_5x5:2 max_pool_3x3:1 sep_conv_3x3:2 "
        "sep_conv_3x3:1 sep_conv_5x5:0 sep_conv_3x3:3",
        DARTS_CONCAT,
    ),
}
PUBLISHED["DARTS"] = PUBLISHED["DARTS_V2"]  # darts cnn/genotypes.py:78
PUBLISHED["PCDARTS"] = PUBLISHED["PC_DARTS_cifar"]  # PC-DARTS genotypes.py:84


def get_genotype(name: str) -> Genotype:
    """A published genotype by its official name (see :data:`PUBLISHED`)."""
    try:
        return PUBLISHED[name]
    except KeyError:
        raise GenotypeError(
            f"unknown genotype name {name!r}; expected one of {sorted(PUBLISHED)}"
        ) from None


# -- the space -----------------------------------------------------------------------------


def _cell_count() -> int:
    """Canonical cells: per node with n available inputs, C(n, 2) input pairs x 7^2 ops."""
    return math.prod(math.comb(n, 2) * len(DERIVABLE_OPS) ** 2 for n in range(2, 2 + STEPS))


#: Number of distinct canonical genotypes :meth:`DartsSpace.sample` can return:
#: (1 * 3 * 6 * 10 * 49^4)^2 = 1,076,746,950,455,072,400 ~ 1.1e18 (DARTS quotes ~10^18).
NUM_GENOTYPES: int = _cell_count() ** 2


def _canonical_pairs(pairs: tuple[Pair, ...]) -> tuple[Pair, ...]:
    out: list[Pair] = []
    for k in range(0, len(pairs), 2):
        a, b = pairs[k], pairs[k + 1]
        out += sorted((a, b), key=lambda p: (p[1], ALL_OPS.index(p[0])))
    return tuple(out)


@SPACES.register("darts")
class DartsSpace:
    """The DARTS cell space: 4 nodes per cell, 2 inputs each, 8 primitives, concat 2..5.

    * ``size()`` is ``None``: there are :data:`NUM_GENOTYPES` (~1.1e18) canonical
      genotypes, far beyond enumeration; :meth:`enumerate` raises.
    * ``canonical`` sorts the two pairs of every node by (input, op id): a node sums its
      two inputs, so their order is meaningless (DARTS lists them by edge strength). No
      graph isomorphism is attempted beyond that (node relabelling would change which
      nodes feed which and is rare among derived cells).
    * ``sample`` draws what DARTS's derivation can return, uniformly over canonical
      genotypes: per node 2 distinct inputs and 2 ops from the 7 non-``none`` primitives.
      ``sample``, ``mutate`` and ``neighbors`` return canonical genotypes.
    * ``mutate`` picks one of :meth:`neighbors` uniformly: one pair's op changed to
      another non-``none`` op, or its input changed to another available node (never the
      node the sibling pair already reads).
    * encodings: ``onehot`` (per cell, node and pair slot of the canonical form: op one-hot
      over the 8 primitives, then input one-hot over nodes 0..4; 208 values) and
      ``adjacency`` (per cell, each of the 14 edges j -> i of DARTS's supernet: multi-hot
      over the 8 primitives, an absent edge all zeros; 224 values, the shape of DARTS's
      alphas).
    """

    name = "darts"

    def size(self) -> int | None:
        return None

    def count(self) -> int:
        """The exact number of canonical genotypes (:data:`NUM_GENOTYPES`)."""
        return NUM_GENOTYPES

    # -- membership ---------------------------------------------------------------------
    def check(self, g: Genotype) -> Genotype:
        """``g`` if it is a member of the DARTS space, else :class:`GenotypeError`."""
        if not isinstance(g, Genotype):
            raise GenotypeError(f"expected a Genotype, got {type(g).__name__}")
        for kind in ("normal", "reduce"):
            pairs = getattr(g, kind)
            if len(pairs) != 2 * STEPS:
                raise GenotypeError(
                    f"{kind} has {len(pairs) // 2} nodes ({len(pairs)} pairs); expected {STEPS} "
                    f"nodes of 2 (op, input) pairs each, as every DARTS-space cell has"
                )
            for op, _ in pairs:
                if op not in PRIMITIVES:
                    raise GenotypeError(
                        f"op {op!r} of {kind} is not a DARTS primitive; expected one of "
                        f"{list(PRIMITIVES)}"
                    )
            if getattr(g, f"{kind}_concat") != DARTS_CONCAT:
                raise GenotypeError(
                    f"{kind}_concat {list(getattr(g, f'{kind}_concat'))} is not the DARTS "
                    f"space's; expected range(2, 6)"
                )
        return g

    # -- values ---------------------------------------------------------------------------
    def canonical(self, arch: Genotype) -> Genotype:
        g = self.check(arch)
        return Genotype(
            _canonical_pairs(g.normal), g.normal_concat, _canonical_pairs(g.reduce), g.reduce_concat
        )

    def _sample_cell(self, rng: np.random.Generator) -> list[Pair]:
        pairs: list[Pair] = []
        for node in range(STEPS):
            inputs = sorted(int(i) for i in rng.choice(node + 2, size=2, replace=False))
            ops = rng.integers(len(DERIVABLE_OPS), size=2)
            pairs += [(DERIVABLE_OPS[int(o)], i) for o, i in zip(ops, inputs, strict=True)]
        return pairs

    def sample(self, rng: np.random.Generator) -> Genotype:
        normal = self._sample_cell(rng)
        reduce = self._sample_cell(rng)
        return self.canonical(Genotype(normal, DARTS_CONCAT, reduce, DARTS_CONCAT))

    def neighbors(self, arch: Genotype) -> list[Genotype]:
        g = self.canonical(arch)
        out: list[Genotype] = []
        for kind in ("normal", "reduce"):
            pairs = getattr(g, kind)
            for k, (op, inp) in enumerate(pairs):
                sibling = pairs[k ^ 1][1]
                changes = [(o, inp) for o in DERIVABLE_OPS if o != op]
                changes += [(op, j) for j in range(k // 2 + 2) if j not in (inp, sibling)]
                for new in changes:
                    cell = list(pairs)
                    cell[k] = new
                    other = "reduce" if kind == "normal" else "normal"
                    fields = {kind: cell, other: getattr(g, other)}
                    out.append(
                        self.canonical(
                            Genotype(fields["normal"], DARTS_CONCAT, fields["reduce"], DARTS_CONCAT)
                        )
                    )
        return out

    def mutate(self, arch: Genotype, rng: np.random.Generator) -> Genotype:
        options = self.neighbors(arch)
        return options[int(rng.integers(len(options)))]

    def enumerate(self) -> Iterator[Genotype]:
        raise GenotypeError(
            f"the DARTS space has {NUM_GENOTYPES:.3e} genotypes and cannot be enumerated; "
            "sample it instead"
        )

    # -- formats --------------------------------------------------------------------------
    def to_string(self, arch: Genotype) -> str:
        return self.check(arch).to_string()

    def from_string(self, text: str) -> Genotype:
        """DARTS's repr, checked to be in the space; for convenience (``arch info``,
        ``--arch``) also the JSON form or a published name such as ``PC_DARTS_cifar``."""
        if not isinstance(text, str):
            raise GenotypeError(f"genotype must be a str, got {type(text).__name__}")
        return self.check(Genotype.parse(text))

    def parse(self, value: Genotype | str | Mapping[str, Any]) -> Genotype:
        """Like :meth:`Genotype.parse` (name, repr, JSON), checked to be in the space."""
        return self.check(Genotype.parse(value))

    def index(self, arch: Genotype) -> int | None:
        """``None``: the DARTS space has no index (it is never enumerated)."""
        self.check(arch)
        return None

    def describe(self) -> dict[str, Any]:
        """Structure of the space, for ``nasforge space info darts``."""
        return {
            "space": self.name,
            "cells": ["normal", "reduce"],
            "nodes_per_cell": STEPS,
            "inputs_per_node": 2,
            "ops": list(PRIMITIVES),
            "concat": list(DARTS_CONCAT),
            "size": None,
            "count": NUM_GENOTYPES,
            "index": None,
            "encodings": {
                "onehot": 2 * 2 * STEPS * (len(PRIMITIVES) + STEPS + 1),
                "adjacency": 2 * len(CELL_EDGES) * len(PRIMITIVES),
            },
            "published": sorted(PUBLISHED),
        }

    def describe_arch(self, arch: Genotype) -> dict[str, Any]:
        """Per node its two ``op<-input`` pairs, the canonical repr and the published names
        of the genotype, for ``nasforge arch info`` (the repr itself is the arch string)."""
        canon = self.canonical(arch)
        nodes = [
            {
                "node": f"{kind} {k // 2 + 2}",
                "inputs": " + ".join(f"{op}<-{i}" for op, i in getattr(arch, kind)[k : k + 2]),
            }
            for kind in ("normal", "reduce")
            for k in range(0, 2 * STEPS, 2)
        ]
        return {
            "nodes": nodes,
            "canonical": canon.to_string(),
            "is_canonical": canon == arch,
            "published_as": sorted(n for n, g in PUBLISHED.items() if g == arch),
        }

    def encodings(self) -> tuple[str, ...]:
        return ("onehot", "adjacency")

    def encode(self, arch: Genotype, kind: str = "onehot") -> np.ndarray:
        g = self.canonical(arch)
        n_ops, n_in = len(PRIMITIVES), STEPS + 1
        if kind == "onehot":
            vec = np.zeros((2, 2 * STEPS, n_ops + n_in), dtype=np.float32)
            for c, pairs in enumerate((g.normal, g.reduce)):
                for k, (op, inp) in enumerate(pairs):
                    vec[c, k, PRIMITIVES.index(op)] = 1.0
                    vec[c, k, n_ops + inp] = 1.0
            return vec.reshape(-1)
        if kind == "adjacency":
            edge_id = {e: n for n, e in enumerate(CELL_EDGES)}
            vec = np.zeros((2, len(CELL_EDGES), n_ops), dtype=np.float32)
            for c, pairs in enumerate((g.normal, g.reduce)):
                for k, (op, inp) in enumerate(pairs):
                    if op != "none":  # a none op is no edge, as DARTS's Zero
                        vec[c, edge_id[(k // 2 + 2, inp)], PRIMITIVES.index(op)] = 1.0
            return vec.reshape(-1)
        raise GenotypeError(f"unknown encoding {kind!r}; expected one of {list(self.encodings())}")

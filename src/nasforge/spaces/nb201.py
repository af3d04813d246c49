"""The NAS-Bench-201 cell search space.

A cell is a DAG over 4 nodes; each of its 6 edges ``j -> i`` (``j < i``) carries one of 5
operations. An :class:`Arch` stores the ops in the official edge order

    (1<-0), (2<-0), (2<-1), (3<-0), (3<-1), (3<-2)

and formats as the official string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``.

The *official index* (0..15624) is the one every NAS-Bench-201 file and paper uses: the
position of the arch in ``itertools.product(OPS, repeat=6)`` after
``random.seed(88); random.shuffle(...)`` (see the official benchmark's README). We call the
un-shuffled position the *code* (a base-5 number, first edge most significant); arrays in
this module map between the two.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from nasforge.errors import ArchError
from nasforge.spaces.base import Choice, check_kind
from nasforge.spaces.registry import SPACES

#: The official op names, in the official order (their position is the op id).
OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NUM_OPS = len(OPS)
NUM_NODES = 4
#: (to_node, from_node) of each edge, in the official order.
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
NUM_EDGES = len(EDGES)
NUM_ARCHS = NUM_OPS**NUM_EDGES  # 15,625
#: Number of equivalence classes under the official de-duplication (NAS-Bench-201, Sec. 2.1).
NUM_UNIQUE = 6466
#: The seed the official benchmark shuffles the product order with.
OFFICIAL_SHUFFLE_SEED = 88

EXPECTED_FORM = "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|"
_OP_ID = {name: i for i, name in enumerate(OPS)}
_POW = np.array([NUM_OPS ** (NUM_EDGES - 1 - e) for e in range(NUM_EDGES)], dtype=np.int64)


# ops tuple -> official index of every arch whose index was asked for (at most 15,625
# entries): a dot product and a table lookup would otherwise dominate tabular search loops.
_INDEX_OF_OPS: dict[tuple[str, ...], int] = {}


@lru_cache(maxsize=1)
def _index_tables() -> tuple[np.ndarray, np.ndarray]:
    """(code_of_index, index_of_code), both int64 arrays of length 15,625."""
    codes = list(range(NUM_ARCHS))  # product order == base-5 code order
    rng = random.Random(OFFICIAL_SHUFFLE_SEED)
    rng.shuffle(codes)
    code_of_index = np.asarray(codes, dtype=np.int64)
    index_of_code = np.empty(NUM_ARCHS, dtype=np.int64)
    index_of_code[code_of_index] = np.arange(NUM_ARCHS, dtype=np.int64)
    code_of_index.flags.writeable = False
    index_of_code.flags.writeable = False
    return code_of_index, index_of_code


def _ops_of_code(code: int) -> tuple[int, ...]:
    out = []
    for p in _POW:
        q, code = divmod(code, int(p))
        out.append(q)
    return tuple(out)


def _node_key(op_ids: Sequence[int]) -> str:
    """The official isomorphism key (``to_unique_str(consider_zero=True)`` in the reference code).

    Node 0 has key ``0``. For each later node every incoming edge gives a term: ``#`` if the
    op is ``none`` or the source key is exactly ``#``; the source key for ``skip_connect``;
    else ``(key)@op``. The node key is the sorted terms joined by ``+``.
    """
    keys = ["0"]
    e = 0
    for node in range(1, NUM_NODES):
        terms = []
        for src in range(node):
            op = OPS[op_ids[e]]
            e += 1
            src_key = keys[src]
            if op == "none" or src_key == "#":
                terms.append("#")
            elif op == "skip_connect":
                terms.append(src_key)
            else:
                terms.append(f"({src_key})@{op}")
        keys.append("+".join(sorted(terms)))
    return keys[-1]


@lru_cache(maxsize=1)
def _canonical_tables() -> tuple[np.ndarray, int]:
    """canonical_index[i] = smallest official index in the class of index i; and #classes."""
    code_of_index, _ = _index_tables()
    first: dict[str, int] = {}
    canon = np.empty(NUM_ARCHS, dtype=np.int64)
    for idx in range(NUM_ARCHS):  # ascending index, so the first member seen is the smallest
        key = _node_key(_ops_of_code(int(code_of_index[idx])))
        canon[idx] = first.setdefault(key, idx)
    canon.flags.writeable = False
    return canon, len(first)


@dataclass(frozen=True, slots=True)
class Arch:
    """One NAS-Bench-201 cell: an immutable, hashable tuple of 6 op names in edge order."""

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.ops, tuple) or len(self.ops) != NUM_EDGES:
            raise ArchError(
                f"an NB201 arch has {NUM_EDGES} edge ops, got {self.ops!r}; "
                f"expected a tuple of {NUM_EDGES} names from {list(OPS)}"
            )
        for op in self.ops:
            if op not in _OP_ID:
                raise ArchError(f"unknown op {op!r}; expected one of {list(OPS)}")

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_string(cls, s: str) -> Arch:
        """Parse the official string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``."""
        if not isinstance(s, str):
            raise ArchError(f"arch string must be a str, got {type(s).__name__} {s!r}")
        text = s.strip()
        nodes = text.split("+")
        if len(nodes) != NUM_NODES - 1:
            raise ArchError(
                f"arch string {s!r} has {len(nodes)} node(s) separated by '+'; "
                f"expected {NUM_NODES - 1}, in the form {EXPECTED_FORM}"
            )
        ops: list[str] = []
        for node_pos, node in enumerate(nodes, start=1):
            if len(node) < 2 or not (node.startswith("|") and node.endswith("|")):
                raise ArchError(
                    f"node {node_pos} {node!r} of {s!r} must be wrapped in '|'; "
                    f"expected the form {EXPECTED_FORM}"
                )
            tokens = node[1:-1].split("|")
            if len(tokens) != node_pos:
                raise ArchError(
                    f"node {node_pos} {node!r} of {s!r} has {len(tokens)} edge(s); "
                    f"expected {node_pos} (one from each earlier node), form {EXPECTED_FORM}"
                )
            for src, token in enumerate(tokens):
                op, sep, inp = token.partition("~")
                if not sep:
                    raise ArchError(f"edge token {token!r} in {s!r} lacks '~'; expected 'op~{src}'")
                if op not in _OP_ID:
                    raise ArchError(
                        f"unknown op {op!r} in edge token {token!r} of {s!r}; "
                        f"expected one of {list(OPS)}"
                    )
                if inp != str(src):
                    raise ArchError(
                        f"edge token {token!r} of node {node_pos} in {s!r} has input "
                        f"index {inp!r}; expected {src} (edges list inputs 0..{node_pos - 1})"
                    )
                ops.append(op)
        return cls(tuple(ops))

    @classmethod
    def from_index(cls, index: int) -> Arch:
        """The arch with this official NAS-Bench-201 index (0..15624)."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise ArchError(f"arch index must be an int, got {type(index).__name__} {index!r}")
        if not 0 <= int(index) < NUM_ARCHS:
            raise ArchError(f"arch index {index} out of range; expected 0..{NUM_ARCHS - 1}")
        code_of_index, _ = _index_tables()
        return cls.from_code(int(code_of_index[int(index)]))

    @classmethod
    def from_code(cls, code: int) -> Arch:
        """The arch at position ``code`` of the un-shuffled product order."""
        if not 0 <= int(code) < NUM_ARCHS:
            raise ArchError(f"arch code {code} out of range; expected 0..{NUM_ARCHS - 1}")
        return cls(tuple(OPS[i] for i in _ops_of_code(int(code))))

    @classmethod
    def from_op_ids(cls, op_ids: Sequence[int]) -> Arch:
        """Build from 6 op ids (positions in :data:`OPS`)."""
        ids = [int(i) for i in op_ids]
        if len(ids) != NUM_EDGES or any(not 0 <= i < NUM_OPS for i in ids):
            raise ArchError(
                f"op ids {list(op_ids)!r} invalid; expected {NUM_EDGES} ints in 0..{NUM_OPS - 1}"
            )
        return cls(tuple(OPS[i] for i in ids))

    @classmethod
    def parse(cls, value: Arch | str | int) -> Arch:
        """Accept an :class:`Arch`, an official arch string, or an official index."""
        if isinstance(value, Arch):
            return value
        if isinstance(value, str):
            stripped = value.strip()
            # ASCII digits only: int() also reads other scripts' digits (Arabic-Indic "١٢").
            if stripped.isascii() and stripped.isdigit():
                return cls.from_index(int(stripped))
            return cls.from_string(stripped)
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return cls.from_index(int(value))
        raise ArchError(
            f"cannot interpret {value!r} as an NB201 arch; expected an Arch, an arch string "
            f"{EXPECTED_FORM}, or an index 0..{NUM_ARCHS - 1}"
        )

    # -- views ----------------------------------------------------------------------------
    def to_string(self) -> str:
        o = self.ops
        return f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|"

    def __str__(self) -> str:
        return self.to_string()

    @property
    def op_ids(self) -> tuple[int, ...]:
        return tuple(_OP_ID[o] for o in self.ops)

    def to_code(self) -> int:
        return int(np.dot(self.op_ids, _POW))

    def to_index(self) -> int:
        """The official NAS-Bench-201 index (memoised: search loops call this per step)."""
        i = _INDEX_OF_OPS.get(self.ops)
        if i is None:
            _, index_of_code = _index_tables()
            i = _INDEX_OF_OPS[self.ops] = int(index_of_code[self.to_code()])
        return i

    def nodes(self) -> list[list[tuple[str, int]]]:
        """Per non-input node, its incoming ``(op, source_node)`` pairs (the genotype form)."""
        out: list[list[tuple[str, int]]] = [[] for _ in range(NUM_NODES - 1)]
        for (dst, src), op in zip(EDGES, self.ops, strict=True):
            out[dst - 1].append((op, src))
        return out

    def unique_key(self) -> str:
        """The official isomorphism key of the output node."""
        return _node_key(self.op_ids)

    def canonical(self) -> Arch:
        """The representative of this arch's equivalence class: its member of smallest index."""
        canon, _ = _canonical_tables()
        return Arch.from_index(int(canon[self.to_index()]))

    def is_canonical(self) -> bool:
        return self.canonical() == self

    # -- neighbourhood and sampling -------------------------------------------------------
    def with_op(self, edge: int, op: str) -> Arch:
        if not 0 <= edge < NUM_EDGES:
            raise ArchError(f"edge {edge} out of range; expected 0..{NUM_EDGES - 1}")
        ops = list(self.ops)
        ops[edge] = op
        return Arch(tuple(ops))

    def neighbors(self) -> list[Arch]:
        """Every arch that differs from this one in exactly one edge's op (24 of them)."""
        return [self.with_op(e, op) for e in range(NUM_EDGES) for op in OPS if op != self.ops[e]]

    def mutate(self, rng: np.random.Generator) -> Arch:
        """Change one uniformly chosen edge to a different, uniformly chosen op.

        This is the mutation of regularized evolution as run with NAS-Bench-201.
        """
        edge = int(rng.integers(NUM_EDGES))
        choices = [op for op in OPS if op != self.ops[edge]]
        return self.with_op(edge, choices[int(rng.integers(len(choices)))])

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Arch:
        """A uniformly random arch."""
        return cls.from_op_ids(rng.integers(NUM_OPS, size=NUM_EDGES))


def all_archs() -> Iterator[Arch]:
    """All 15,625 archs in official index order."""
    for i in range(NUM_ARCHS):
        yield Arch.from_index(i)


def unique_archs() -> list[Arch]:
    """One representative per equivalence class (6,466), in official index order."""
    canon, _ = _canonical_tables()
    return [Arch.from_index(int(i)) for i in np.unique(canon)]


def num_unique() -> int:
    """Number of equivalence classes, computed from the keying (6,466)."""
    return _canonical_tables()[1]


def canonical_indices() -> np.ndarray:
    """Read-only array: official index -> official index of its class representative."""
    return _canonical_tables()[0]


def code_of_index() -> np.ndarray:
    return _index_tables()[0]


def index_of_code() -> np.ndarray:
    return _index_tables()[1]


def product_order() -> Iterator[tuple[str, ...]]:
    """The un-shuffled product order (code order) as op tuples."""
    return itertools.product(OPS, repeat=NUM_EDGES)


# ---------------------------------------------------------------------------------------
# encodings
# ---------------------------------------------------------------------------------------
#: Input-to-output paths of the cell as edge positions in the official order: 0->3,
#: 0->1->3, 0->2->3, 0->1->2->3. NASLib's ``path_blueprints`` (naslib/search_spaces/
#: nasbench201/encodings.py, ``get_paths``: ``[[3], [0, 4], [1, 5], [0, 2, 5]]``) are these
#: positions; they are paths only in this (official) edge order.
PATHS: tuple[tuple[int, ...], ...] = ((3,), (0, 4), (1, 5), (0, 2, 5))
#: Length of the path encoding: every op sequence of length 1..3, ``5 + 25 + 125``
#: (NASLib ``encode_paths``: ``sum(num_ops ** i for i in range(1, longest_path_length + 1))``
#: with ``longest_path_length=3``).
PATH_ENCODING_LENGTH = sum(NUM_OPS**i for i in range(1, NUM_NODES))  # 155
#: Vertices of the op-on-node form of the cell: input, one per edge (official order), output.
NUM_VERTICES = NUM_EDGES + 2


@lru_cache(maxsize=1)
def vertex_adjacency() -> np.ndarray:
    """The op-on-node DAG of the cell (8 x 8, read-only): input -> every edge leaving node 0,
    edge ``j->i`` -> every edge leaving node ``i``, edges entering node 3 -> output.

    It is NASLib's NB201 matrix (``encode_gcn_nasbench201``) with the edge vertices in the
    official order instead of NASLib's ``EDGE_LIST`` order; the official order is
    topological, so the matrix is strictly upper triangular.
    """
    m = np.zeros((NUM_VERTICES, NUM_VERTICES), dtype=np.float32)
    out = NUM_VERTICES - 1
    for v, (dst, src) in enumerate(EDGES, start=1):
        if src == 0:
            m[0, v] = 1.0
        if dst == NUM_NODES - 1:
            m[v, out] = 1.0
        for w, (_, src2) in enumerate(EDGES, start=1):
            if src2 == dst:
                m[v, w] = 1.0
    m.flags.writeable = False
    return m


def encode_onehot(arch: Arch) -> np.ndarray:
    """30 bits: per edge (official order) a one-hot over :data:`OPS` (official op order)."""
    out = np.zeros((NUM_EDGES, NUM_OPS), dtype=np.float32)
    out[np.arange(NUM_EDGES), arch.op_ids] = 1.0
    return out.ravel()


def encode_adjacency(arch: Arch) -> np.ndarray:
    """BANANAS' adjacency encoding of the op-on-node cell: the strict upper triangle of
    :func:`vertex_adjacency` (28 bits, row-major) followed by the one-hot op of each edge
    vertex (30 bits): 58 in all.

    Every NB201 edge exists (``none`` is an op, as in NASLib's matrix), so the 28 adjacency
    bits are the same for every arch: the encoding orders as much as :func:`encode_onehot`,
    in the layout cell-space predictors expect.
    """
    upper = vertex_adjacency()[np.triu_indices(NUM_VERTICES, k=1)]
    return np.concatenate([upper, encode_onehot(arch)])


def path_indices(arch: Arch) -> tuple[int, ...]:
    """The bit of each input-to-output path in the path encoding (NASLib
    ``get_path_indices``): paths of length ``L`` start after the ``5 + ... + 5**(L-1)`` bits
    of the shorter ones, and a path's ops are the base-5 digits of its offset there, first
    op least significant. Op ids are the official ones (NASLib numbers ops differently, so
    the bits are a permutation of NASLib's)."""
    ids = arch.op_ids
    out = []
    for path in PATHS:
        index = sum(NUM_OPS**i for i in range(1, len(path)))
        for j, edge in enumerate(path):
            index += ids[edge] * NUM_OPS**j
        out.append(index)
    return tuple(out)


def encode_path(arch: Arch) -> np.ndarray:
    """BANANAS path encoding (White et al., AAAI 2021) as NASLib computes it for NB201
    (``encode_paths``): 155 bits, one per op sequence of length 1..3, set for each of the 4
    input-to-output paths. Paths through ``none`` are kept, as in NASLib; two paths with the
    same op sequence share one bit, so the encoding is not injective."""
    out = np.zeros(PATH_ENCODING_LENGTH, dtype=np.float32)
    out[list(path_indices(arch))] = 1.0
    return out


#: Bits the truncated path encoding keeps: naszilla's default ``cutoff`` for ``trunc_path``
#: (naszilla/naszilla ``naszilla/nas_bench_201/cell_201.py:55-58``, ``encode_freq_paths``
#: ``:292-300``), i.e. the 5 one-edge and 25 two-edge paths, not the 125 three-edge ones.
TRUNC_PATH_LENGTH = 30


def encode_trunc_path(arch: Arch) -> np.ndarray:
    """The path encoding truncated to its first :data:`TRUNC_PATH_LENGTH` bits, as naszilla's
    BANANAS encodes NB201 archs by default (``predictor_encoding='trunc_path'``,
    ``naszilla/nas_algorithms.py:175``). The first 30 bits are the paths of length 1 and 2
    whatever the op numbering, so these are naszilla's features up to their order."""
    return encode_path(arch)[:TRUNC_PATH_LENGTH].copy()


_ENCODERS = {
    "onehot": encode_onehot,
    "adjacency": encode_adjacency,
    "path": encode_path,
    "trunc_path": encode_trunc_path,
}


# ---------------------------------------------------------------------------------------
# the registered space
# ---------------------------------------------------------------------------------------
@SPACES.register("nb201")
class NB201Space:
    """The NAS-Bench-201 cell space behind the :class:`SearchSpace` protocol.

    Every method delegates to :class:`Arch`, so sampling, mutation and the neighbourhood
    draw exactly what they drew before the protocol existed (search runs are unchanged).
    The index is the official NAS-Bench-201 index; ``canonical`` the official
    de-duplication (6,466 classes). Positions are the 6 edges, named ``"dst<-src"``.
    """

    name = "nb201"

    def size(self) -> int:
        return NUM_ARCHS

    def sample(self, rng: np.random.Generator) -> Arch:
        return Arch.sample(rng)

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        return arch.mutate(rng)

    def neighbors(self, arch: Arch) -> list[Arch]:
        return arch.neighbors()

    def to_string(self, arch: Arch) -> str:
        return arch.to_string()

    def from_string(self, text: str) -> Arch:
        """The official arch string, or an official index written as digits."""
        if not isinstance(text, str):
            raise ArchError(f"arch string must be a str, got {type(text).__name__} {text!r}")
        return Arch.parse(text)

    def encodings(self) -> tuple[str, ...]:
        return tuple(_ENCODERS)

    def encode(self, arch: Arch, kind: str = "onehot") -> np.ndarray:
        check_kind(self, kind)
        return _ENCODERS[kind](arch)

    def canonical(self, arch: Arch) -> Arch:
        return arch.canonical()

    def enumerate(self) -> Iterator[Arch]:
        return all_archs()

    def index(self, arch: Arch) -> int:
        return arch.to_index()

    def from_index(self, index: int) -> Arch:
        return Arch.from_index(index)

    def choices(self) -> tuple[Choice, ...]:
        return tuple(Choice(f"{dst}<-{src}", OPS) for dst, src in EDGES)

    def to_choices(self, arch: Arch) -> tuple[int, ...]:
        return arch.op_ids

    def from_choices(self, picks: Sequence[int]) -> Arch:
        return Arch.from_op_ids(picks)

    def describe(self) -> dict[str, Any]:
        return {
            "space": self.name,
            "nodes": NUM_NODES,
            "edges": NUM_EDGES,
            "ops": list(OPS),
            "size": NUM_ARCHS,
            "unique": num_unique(),
            "index": "official NAS-Bench-201 index 0..15624",
            "encodings": {
                "onehot": NUM_EDGES * NUM_OPS,
                "adjacency": NUM_VERTICES * (NUM_VERTICES - 1) // 2 + NUM_EDGES * NUM_OPS,
                "path": PATH_ENCODING_LENGTH,
                "trunc_path": TRUNC_PATH_LENGTH,
            },
        }

    def describe_arch(self, arch: Arch) -> dict[str, Any]:
        canon = arch.canonical()
        return {
            "index": arch.to_index(),
            "ops": [
                {"edge": f"{dst}<-{src}", "op": op}
                for (dst, src), op in zip(EDGES, arch.ops, strict=True)
            ],
            "canonical": canon.to_string(),
            "canonical_index": canon.to_index(),
            "is_canonical": canon == arch,
        }


def stage_layout(c: int, n: int) -> list[tuple[int, bool]]:
    """(channels, is_reduction) per cell of the NB201 skeleton: N cells at C, 2C, 4C, a
    reduction block before the second and third stage. (Here, free of torch, because the
    cost counter reads it as well as the network.)"""
    channels = [c] * n + [c * 2] + [c * 2] * n + [c * 4] + [c * 4] * n
    reductions = [False] * n + [True] + [False] * n + [True] + [False] * n
    return list(zip(channels, reductions, strict=True))

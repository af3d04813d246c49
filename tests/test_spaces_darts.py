"""The DARTS cell space: Genotype formats, published genotypes, errors, and the space protocol."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nasforge.errors import NasforgeError
from nasforge.spaces import SPACES
from nasforge.spaces.base import SearchSpace
from nasforge.spaces.darts import (
    ALL_OPS,
    DERIVABLE_OPS,
    PRIMITIVES,
    PUBLISHED,
    DartsSpace,
    Genotype,
    GenotypeError,
    get_genotype,
)

# PC-DARTS genotypes.py:80, as the file holds it (a genotype is a fact, typed in here).
PC_DARTS_CIFAR_TEXT = (
    "PC_DARTS_cifar = Genotype(normal=[('sep_conv_3x3', 1), ('skip_connect', 0), "
    "('sep_conv_3x3', 0), ('dil_conv_3x3', 1), ('sep_conv_5x5', 0), ('sep_conv_3x3', 1), "
    "('avg_pool_3x3', 0), ('dil_conv_3x3', 1)], normal_concat=range(2, 6), "
    "reduce=[('sep_conv_5x5', 1), ('max_pool_3x3', 0), ('sep_conv_5x5', 1), "
    "('sep_conv_5x5', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 2)], reduce_concat=range(2, 6))"
)
# darts cnn/genotypes.py:76 layout: lists for the concat.
DARTS_V2_TEXT = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
    "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)
# darts cnn/genotypes.py:46-73 layout: one pair per line, trailing commas, a comment.
AMOEBA_TEXT = """AmoebaNet = Genotype(
  normal = [
    ('avg_pool_3x3', 0), ('max_pool_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_5x5', 2),
    ('sep_conv_3x3', 0), ('avg_pool_3x3', 3), ('sep_conv_3x3', 1), ('skip_connect', 1),
    ('skip_connect', 0), ('avg_pool_3x3', 1),
    ],
  normal_concat = [4, 5, 6],  # nodes 2 and 3 feed later nodes only
  reduce = [
    ('avg_pool_3x3', 0), ('sep_conv_3x3', 1), ('max_pool_3x3', 0), ('sep_conv_7x7', 2),
    ('sep_conv_7x7', 0), ('avg_pool_3x3', 1), ('max_pool_3x3', 0), ('max_pool_3x3', 1),
    ('conv_7x1_1x7', 0), ('sep_conv_3x3', 5),
  ],
  reduce_concat = [3, 4, 6]
)
"""

SPACE = DartsSpace()


@st.composite
def any_genotype(draw: st.DrawFn) -> Genotype:
    """Genotypes beyond the DARTS space too: any node count, any op, any concat."""

    def cell() -> tuple[list[tuple[str, int]], list[int]]:
        steps = draw(st.integers(1, 6))
        pairs = [
            (draw(st.sampled_from(ALL_OPS)), draw(st.integers(0, k // 2 + 1)))
            for k in range(2 * steps)
        ]
        concat = draw(
            st.lists(st.integers(0, steps + 1), min_size=1, max_size=steps + 2, unique=True)
        )
        return pairs, concat

    (n, nc), (r, rc) = cell(), cell()
    return Genotype(n, nc, r, rc)


@given(any_genotype())
def test_repr_and_json_round_trip(g: Genotype) -> None:
    assert Genotype.from_string(g.to_string()) == g
    assert Genotype.from_json(g.to_json()) == g
    assert Genotype.from_dict(json.loads(json.dumps(g.to_dict()))) == g
    # The namedtuple repr with list concats (genotypes.py style) parses to the same value.
    listed = (
        f"Genotype(normal={list(g.normal)!r}, normal_concat={list(g.normal_concat)!r}, "
        f"reduce={list(g.reduce)!r}, reduce_concat={list(g.reduce_concat)!r})"
    )
    assert Genotype.from_string(listed) == g
    assert hash(Genotype.from_string(listed)) == hash(g)


@given(st.integers(0, 2**32 - 1))
def test_sampled_genotypes_round_trip_through_the_space(seed: int) -> None:
    g = SPACE.sample(np.random.default_rng(seed))
    assert SPACE.from_string(SPACE.to_string(g)) == g
    assert SPACE.from_string(g.to_json()) == g
    assert SPACE.canonical(g) == g


def test_published_genotypes_parse_from_the_official_text() -> None:
    assert Genotype.from_string(PC_DARTS_CIFAR_TEXT) == PUBLISHED["PC_DARTS_cifar"]
    assert Genotype.parse(DARTS_V2_TEXT) == PUBLISHED["DARTS_V2"] == PUBLISHED["DARTS"]
    assert Genotype.from_string(AMOEBA_TEXT) == PUBLISHED["AmoebaNet"]
    assert PUBLISHED["PCDARTS"] is PUBLISHED["PC_DARTS_cifar"]
    # Derived genotypes print as train_search.py logs them.
    assert PUBLISHED["PC_DARTS_cifar"].to_string() == PC_DARTS_CIFAR_TEXT.split(" = ", 1)[1]
    assert set(PUBLISHED) == {
        "NASNet",
        "AmoebaNet",
        "DARTS_V1",
        "DARTS_V2",
        "DARTS",
        "PC_DARTS_cifar",
        "PC_DARTS_image",
        "PCDARTS",
    }
    img = PUBLISHED["PC_DARTS_image"]
    assert img.normal[7] == ("dil_conv_5x5", 4) and img.reduce[0] == ("sep_conv_3x3", 0)
    assert PUBLISHED["NASNet"].steps == (5, 5) and PUBLISHED["NASNet"].reduce_concat == (4, 5, 6)
    assert get_genotype("DARTS_V1").reduce[7] == ("avg_pool_3x3", 0)


def test_the_darts_space_holds_the_darts_genotypes_but_not_nasnet() -> None:
    for name in ("DARTS_V1", "DARTS_V2", "PC_DARTS_cifar", "PC_DARTS_image"):
        assert SPACE.parse(name) == PUBLISHED[name]
    with pytest.raises(GenotypeError, match="5 nodes"):
        SPACE.parse("NASNet")


@pytest.mark.parametrize(
    ("text", "token"),
    [
        (DARTS_V2_TEXT.replace("'dil_conv_3x3'", "'dil_conv_9x9'"), "'dil_conv_9x9'"),
        (DARTS_V2_TEXT.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 5)"), "not available"),
        (
            DARTS_V2_TEXT.replace("('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ", "", 1).replace(
                "normal_concat=[2, 3, 4, 5]", "normal_concat=[2, 3, 4]"
            ),
            "normal has 3 nodes",
        ),
        (DARTS_V2_TEXT.replace("('sep_conv_3x3', 0), ", "", 1), "7 (op, input) pairs"),
        (DARTS_V2_TEXT.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[2, 9]"), "9"),
        (DARTS_V2_TEXT[:-1], "the end of the text"),
        (DARTS_V2_TEXT + " junk", "'junk'"),
        (DARTS_V2_TEXT.replace("normal=", "nromal="), "'nromal'"),
        (DARTS_V2_TEXT.replace("0)", "x)", 1), "'x'"),
        (DARTS_V2_TEXT.replace("reduce_concat=[2, 3, 4, 5]", "normal_concat=[2]"), "repeats"),
        ("Genotype(normal=[('sep_conv_3x3', 0)], normal_concat=[2])", "lacks field(s)"),
        ("Genotype(normal=[], normal_concat=[2], reduce=[], reduce_concat=[2])", "0 (op, input)"),
        ("__import__('os').system('true')", ".system('true')"),
        ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)] + [])", "'+ [])'"),
        ("DARTS_V3", "unknown genotype name 'DARTS_V3'"),
        ('{"normal": []}', "missing keys"),
        ("{not json", "malformed"),
        ("", "the end of the text"),
    ],
)
def test_bad_genotypes_raise_naming_the_bad_token(text: str, token: str) -> None:
    with pytest.raises(GenotypeError) as info:
        SPACE.parse(text)
    assert isinstance(info.value, NasforgeError)
    msg = str(info.value)
    assert token in msg and "\n" not in msg
    assert "expected" in msg


def test_space_registered_and_implements_the_protocol() -> None:
    space = SPACES.create("darts")
    assert isinstance(space, DartsSpace) and isinstance(space, SearchSpace)
    assert space.name == "darts"
    # ~1.1e18 canonical genotypes (DARTS, Sec. 2.1: "about 10^18"): not enumerable.
    assert space.size() is None
    assert space.count() == (1 * 3 * 6 * 10 * 49**4) ** 2 == 1_076_746_950_455_072_400
    with pytest.raises(GenotypeError, match="cannot be enumerated"):
        next(iter(space.enumerate()))


def test_sample_draws_what_darts_derivation_can_return() -> None:
    rng = np.random.default_rng(0)
    gs = [SPACE.sample(rng) for _ in range(200)]
    assert gs[:5] == [SPACE.sample(r) for r in [np.random.default_rng(0)] * 5]
    ops_seen = set()
    for g in gs:
        for pairs in (g.normal, g.reduce):
            for k in range(0, 8, 2):
                (op_a, a), (op_b, b) = pairs[k], pairs[k + 1]
                assert a < b <= k // 2 + 1  # two distinct inputs, canonical order
                ops_seen |= {op_a, op_b}
    assert ops_seen == set(DERIVABLE_OPS)  # never 'none'
    assert len(set(gs)) == len(gs)


def test_canonical_sorts_the_two_pairs_of_each_node_only() -> None:
    g = PUBLISHED["PC_DARTS_cifar"]
    c = SPACE.canonical(g)
    assert c.normal[:2] == (("skip_connect", 0), ("sep_conv_3x3", 1))
    assert c != g and SPACE.canonical(c) == c
    for kind in ("normal", "reduce"):
        for k in range(0, 8, 2):
            assert set(getattr(c, kind)[k : k + 2]) == set(getattr(g, kind)[k : k + 2])
    assert np.array_equal(SPACE.encode(g), SPACE.encode(c))
    assert np.array_equal(SPACE.encode(g, "adjacency"), SPACE.encode(c, "adjacency"))


def test_neighbors_and_mutate_change_exactly_one_op_or_input() -> None:
    g = SPACE.canonical(PUBLISHED["DARTS_V2"])
    nbrs = SPACE.neighbors(g)
    # Per cell: 8 pairs x 6 other ops + input moves (0 + 1 + 2 + 3 per node, x2 pairs).
    assert len(nbrs) == len(set(nbrs)) == 2 * (8 * 6 + 2 * (0 + 1 + 2 + 3)) == 120
    for n in nbrs:
        diff = sum(
            a != b
            for x, y in ((g.normal, n.normal), (g.reduce, n.reduce))
            for a, b in zip(x, y, strict=True)
        )
        # One pair changed; canonical re-sorting can swap it with its sibling.
        assert 1 <= diff <= 2 and SPACE.canonical(n) == n and n != g
    rng = np.random.default_rng(3)
    assert all(SPACE.mutate(g, rng) in set(nbrs) for _ in range(20))


def test_encodings() -> None:
    assert SPACE.encodings() == ("onehot", "adjacency")
    g = PUBLISHED["DARTS_V2"]
    onehot = SPACE.encode(g)
    assert onehot.shape == (2 * 8 * (8 + 5),) and onehot.sum() == 2 * 8 * 2
    adj = SPACE.encode(g, "adjacency").reshape(2, 14, len(PRIMITIVES))
    # DARTS_V2 normal node 2 reads sep_conv_3x3 from nodes 0 and 1: edges 0 and 1 (2<-0, 2<-1).
    assert adj[0, 0, PRIMITIVES.index("sep_conv_3x3")] == 1
    assert adj[0, 1, PRIMITIVES.index("sep_conv_3x3")] == 1
    assert adj.sum() == 16
    with pytest.raises(GenotypeError, match="'path'"):
        SPACE.encode(g, "path")


def test_genotype_is_frozen_and_hashable() -> None:
    g = PUBLISHED["DARTS_V2"]
    with pytest.raises(AttributeError):
        g.normal = ()  # type: ignore[misc]
    assert {g: 1}[Genotype.from_string(g.to_string())] == 1
    assert Genotype(list(g.normal), range(2, 6), list(g.reduce), [2, 3, 4, 5]) == g


def test_describe_and_index_for_the_cli() -> None:
    d = SPACE.describe()
    assert d["space"] == "darts" and d["ops"] == list(PRIMITIVES) and d["size"] is None
    assert d["count"] == SPACE.count()
    g = SPACE.from_string("PC_DARTS_cifar")  # arch info passes names straight through
    assert g == PUBLISHED["PC_DARTS_cifar"] and SPACE.index(g) is None
    assert d["encodings"] == {k: SPACE.encode(g, k).size for k in SPACE.encodings()}
    info = SPACE.describe_arch(g)
    assert len(info["nodes"]) == 8 and not info["is_canonical"]
    assert info["nodes"][0] == {"node": "normal 2", "inputs": "sep_conv_3x3<-1 + skip_connect<-0"}
    assert info["nodes"][7] == {"node": "reduce 5", "inputs": "sep_conv_3x3<-1 + sep_conv_3x3<-2"}
    assert info["published_as"] == ["PCDARTS", "PC_DARTS_cifar"]
    assert SPACE.from_string(info["canonical"]) == SPACE.canonical(g)

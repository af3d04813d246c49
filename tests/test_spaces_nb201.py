"""The NB201 search space: official string format, official index, de-duplication, moves."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nasforge.errors import ArchError
from nasforge.spaces import nb201
from nasforge.spaces.nb201 import OPS, Arch

indices = st.integers(min_value=0, max_value=nb201.NUM_ARCHS - 1)
op_tuples = st.tuples(*[st.sampled_from(OPS)] * nb201.NUM_EDGES)


@given(op_tuples)
def test_string_round_trip(ops: tuple[str, ...]) -> None:
    arch = Arch(ops)
    assert Arch.from_string(arch.to_string()) == arch


@given(indices)
def test_index_round_trip(i: int) -> None:
    assert Arch.from_index(i).to_index() == i


@given(op_tuples)
def test_parse_accepts_arch_string_and_index(ops: tuple[str, ...]) -> None:
    arch = Arch(ops)
    assert Arch.parse(arch) is arch
    assert Arch.parse(arch.to_string()) == arch
    assert Arch.parse(arch.to_index()) == arch
    assert Arch.parse(str(arch.to_index())) == arch


def test_official_index_anchor() -> None:
    # Index 0 of the official benchmark, as documented with the official release.
    s = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
    assert Arch.from_index(0).to_string() == s
    assert Arch.from_string(s).to_index() == 0


def test_index_is_a_bijection_over_the_space() -> None:
    archs = list(nb201.all_archs())
    assert len(archs) == nb201.NUM_ARCHS == 15625
    assert len(set(archs)) == nb201.NUM_ARCHS
    assert [a.to_index() for a in archs[:50]] == list(range(50))


def test_unique_classes_match_the_published_count() -> None:
    assert nb201.num_unique() == 6466
    reps = nb201.unique_archs()
    assert len(reps) == 6466
    assert all(r.canonical() == r for r in reps[:200])


@settings(max_examples=200)
@given(indices)
def test_canonical_is_an_idempotent_class_representative(i: int) -> None:
    arch = Arch.from_index(i)
    canon = arch.canonical()
    assert canon.canonical() == canon
    assert canon.unique_key() == arch.unique_key()
    assert canon.to_index() <= arch.to_index()


def test_known_equivalences() -> None:
    # The output only depends on node 3: archs that differ only on edges into a node whose
    # output never reaches node 3 are the same network.
    dead = Arch.from_string(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|"
    )
    empty = Arch(("none",) * 6)
    assert dead.canonical() == empty.canonical()
    # skip_connect passes the source key through: skip into node 1 then conv == conv from 0.
    a = Arch.from_string("|skip_connect~0|+|none~0|none~1|+|none~0|nor_conv_3x3~1|none~2|")
    b = Arch.from_string("|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|")
    assert a.canonical() == b.canonical()
    # The official keying is order-insensitive among the terms of a node.
    c = Arch.from_string("|nor_conv_1x1~0|+|none~0|none~1|+|nor_conv_3x3~0|nor_conv_1x1~1|none~2|")
    d = Arch.from_string("|nor_conv_3x3~0|+|none~0|none~1|+|nor_conv_1x1~0|nor_conv_1x1~1|none~2|")
    assert c.canonical() != d.canonical()  # (0)@conv1x1 into 3x3 path differs
    # Different networks stay apart.
    assert Arch(("nor_conv_3x3",) * 6).canonical() != Arch(("nor_conv_1x1",) * 6).canonical()


@given(indices)
def test_neighbors_differ_in_exactly_one_edge(i: int) -> None:
    arch = Arch.from_index(i)
    nbrs = arch.neighbors()
    assert len(nbrs) == nb201.NUM_EDGES * (len(OPS) - 1) == 24
    assert len(set(nbrs)) == 24
    for n in nbrs:
        assert sum(x != y for x, y in zip(n.ops, arch.ops, strict=False)) == 1


def test_mutate_and_sample_are_seeded_and_valid() -> None:
    arch = Arch(("nor_conv_3x3",) * 6)
    muts = [arch.mutate(np.random.default_rng(s)) for s in range(30)]
    assert all(sum(x != y for x, y in zip(m.ops, arch.ops, strict=False)) == 1 for m in muts)
    assert [arch.mutate(np.random.default_rng(7)) for _ in range(3)] == [
        arch.mutate(np.random.default_rng(7))
    ] * 3
    r1, r2 = np.random.default_rng(3), np.random.default_rng(3)
    assert [Arch.sample(r1) for _ in range(10)] == [Arch.sample(r2) for _ in range(10)]
    samples = {Arch.sample(np.random.default_rng(s)) for s in range(100)}
    assert len(samples) > 90


@pytest.mark.parametrize(
    ("bad", "token"),
    [
        ("|nor_conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|", "nor_conv_5x5"),
        ("|none~0|+|none~0|none~1|", "2 node"),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", "|none~0|"),
        ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "none~1"),
        ("|none0|+|none~0|none~1|+|none~0|none~1|none~2|", "none0"),
        ("garbage", "garbage"),
        ("", "''"),
    ],
)
def test_bad_strings_name_the_offending_token(bad: str, token: str) -> None:
    with pytest.raises(ArchError) as info:
        Arch.from_string(bad)
    msg = str(info.value)
    assert token in msg
    assert "expected" in msg


@pytest.mark.parametrize("bad", [-1, 15625, 10**9, 1.5, True, None])
def test_bad_values_raise_arch_error(bad: object) -> None:
    with pytest.raises(ArchError, match="expected"):
        Arch.parse(bad)  # type: ignore[arg-type]


def test_direct_construction_is_validated() -> None:
    with pytest.raises(ArchError, match="conv"):
        Arch(("conv",) * 6)
    with pytest.raises(ArchError, match="6 edge ops"):
        Arch(("none",) * 5)


def test_arch_is_hashable_and_immutable() -> None:
    a = Arch.from_index(5)
    assert {a: 1}[Arch.from_index(5)] == 1
    with pytest.raises(AttributeError):
        a.ops = ("none",) * 6  # type: ignore[misc]

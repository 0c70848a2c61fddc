"""Hypothesis strategies for the property suite (tests/test_properties.py), built from the
schemas in common/schemas.py: each field of ``EventIn`` gets values from across its whole
domain and past its edges (any unicode including lone surrogates and controls, timestamps of
every year and offset, numbers at the edges of int64 and float, deep and wide JSON), so that
both the accepted and the refused side of every rule are exercised."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hypothesis import strategies as st

# Every code point, lone surrogates (category Cs) and controls included; hypothesis leaves
# surrogates out unless told.
ANY_CHAR = st.characters(codec=None, exclude_categories=())
ANY_TEXT = st.text(ANY_CHAR, max_size=40)
PLAIN_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=40)
# What a spreadsheet would take for a formula, and whitespace the schemas strip.
EDGY_PREFIXES = st.sampled_from(["=", "+", "-", "@", "\t", "\r", "'", " ", "\n", "\x85", ""])
TEXTS = st.one_of(
    PLAIN_TEXT,
    ANY_TEXT,
    st.builds(lambda p, t: p + t, EDGY_PREFIXES, ANY_TEXT),
    st.sampled_from(
        ["", " ", "\x00", "k\ud800", "\u2028", "\ufeff", "\U0001d518\U0001d52b", "a" * 129]
    ),
)

INT64 = 2**63
EDGE_NUMBERS = st.sampled_from(
    [
        0,
        -0.0,
        INT64 - 1,
        -INT64,
        INT64,  # one past: refused
        -INT64 - 1,
        2**53 + 1,
        9007199254740993.0,
        1e16,
        1e16 + 2,
        -1e17,
        1e22,
        2.0**80,
        1.7976931348623157e308,
        -1.7976931348623157e308,
        5e-324,
        1e-7,
        0.1,
        math.inf,  # json.dumps writes Infinity and NaN, which Python's parser takes
        math.nan,
    ]
)
NUMBERS = st.one_of(
    EDGE_NUMBERS,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=1e15, max_value=1e300).map(lambda f: float(round(f))),  # whole
)
LEAVES = st.one_of(st.none(), st.booleans(), NUMBERS, TEXTS)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=6),
        st.dictionaries(TEXTS, children, max_size=6),
    )


JSON = st.recursive(LEAVES, _containers, max_leaves=30)
# Deep (past MAX_METADATA_DEPTH, 8) and wide (hundreds of keys, past MAX_METADATA_BYTES).
DEEP = st.integers(1, 12).map(lambda n: _nest(n))
WIDE = st.integers(1, 2500).map(lambda n: {f"k{i}": i for i in range(n)})
METADATA = st.one_of(
    st.dictionaries(TEXTS, JSON, max_size=8),
    DEEP,
    WIDE,
    st.dictionaries(PLAIN_TEXT, NUMBERS, max_size=4),
)


def _nest(levels: int) -> dict[str, Any]:
    node: Any = 1
    for i in range(levels - 1):
        node = {"d": node} if i % 2 else [node]
    return {"d": node}


def _offset(minutes: int) -> str:
    if minutes == 0:
        return "Z"
    sign = "+" if minutes > 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


# Timestamps as RFC 3339 strings: every year 1..9999, every offset RFC 3339 can write
# (up to ±23:59), with and without fractions; the extreme instants more often.
WALL = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999999)),
    st.sampled_from(
        [datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999999), datetime(1, 1, 1, 23, 59)]
    ),
    st.integers(0, 24 * 60).map(lambda m: datetime(9999, 12, 31) + timedelta(minutes=m - 1)),
)
OFFSETS = st.one_of(
    st.integers(-(23 * 60 + 59), 23 * 60 + 59),
    st.sampled_from([0, 14 * 60, -14 * 60, 12 * 60, -12 * 60]),
)
RFC3339 = st.builds(lambda wall, minutes: wall.isoformat() + _offset(minutes), WALL, OFFSETS)
TIMESTAMPS = st.one_of(
    RFC3339,
    RFC3339,
    RFC3339,
    st.sampled_from(
        ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "2026-11-01T09:00:00", "now"]
    ),
    st.just(1700000000),
)
# Mostly plausible names, so that most events are accepted and read back; the rest from
# anywhere (one_of picks its branches alike, hence the repeats).
NAME = PLAIN_TEXT.map(lambda t: t[:20])
SHORT_NAMES = st.one_of(NAME, NAME, NAME, TEXTS)
EVENT_TEXTS = st.one_of(
    PLAIN_TEXT, st.text(ANY_CHAR.filter(lambda c: c.isprintable()), min_size=1), TEXTS
)


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """An event body: mostly plausible, any field possibly past its rules."""
    event: dict[str, Any] = {
        "source": draw(SHORT_NAMES),
        "type": draw(SHORT_NAMES),
        "text": draw(EVENT_TEXTS),
    }
    if draw(st.booleans()):
        event["metadata"] = draw(METADATA)
    if draw(st.booleans()):
        event["occurred_at"] = draw(TIMESTAMPS)
    return event


# Values that should all be accepted, so that each example has something to read back:
# still any printable unicode, any finite number within 64 bits, every year and offset.
STORABLE_TEXT = st.text(ANY_CHAR.filter(lambda c: c != "\x00" and not 0xD800 <= ord(c) <= 0xDFFF))
STORABLE_JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-INT64, max_value=INT64 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        EDGE_NUMBERS.filter(lambda n: isinstance(n, float) and math.isfinite(n)),
        STORABLE_TEXT,
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(STORABLE_TEXT, children, max_size=5)
    ),
    max_leaves=20,
)


@st.composite
def storable_events(draw: st.DrawFn) -> dict[str, Any]:
    event: dict[str, Any] = {
        "source": draw(NAME.filter(str.strip)),
        "type": draw(NAME.filter(str.strip)),
        "text": draw(STORABLE_TEXT.filter(bool)),
        "metadata": draw(st.dictionaries(STORABLE_TEXT, STORABLE_JSON, max_size=5)),
    }
    if draw(st.booleans()):
        event["occurred_at"] = draw(RFC3339)
    return event


ANY_EVENT = st.one_of(events(), storable_events())
BATCH_KEYS = st.one_of(PLAIN_TEXT, PLAIN_TEXT, ANY_TEXT, st.none(), st.integers(0, 9))
QUERIES = st.one_of(PLAIN_TEXT, ANY_TEXT, st.just(""))
TOP_K = st.sampled_from([1, 10, 100, 101])


@dataclass(frozen=True)
class Scenario:
    """One example: events sent one by one (``quoted``: the key as an RFC 8941 string),
    then a batch of (key, event), then a search query and ``top_k``."""

    singles: list[dict[str, Any]]
    batch: list[tuple[Any, dict[str, Any]]]
    query: str
    top_k: int
    quoted: bool = False


SCENARIOS = st.builds(
    Scenario,
    singles=st.lists(ANY_EVENT, max_size=3),
    batch=st.lists(st.tuples(BATCH_KEYS, ANY_EVENT), max_size=4),
    query=QUERIES,
    top_k=TOP_K,
    quoted=st.booleans(),
)

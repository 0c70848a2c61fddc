"""Field types that keep what PostgreSQL (and our JSON tooling) cannot store out of the API.

- NUL characters: PostgreSQL refuses U+0000 in ``text`` and ``jsonb``; without this check
  a ``"\\u0000"`` in a request is a database error (a 500) instead of a 422. Lone
  surrogates likewise (they are not UTF-8).
- Numbers: JSON allows ``1e400`` (parsed as infinity, which JSON cannot write back) and
  integers of any size (which orjson and many clients cannot hold); metadata numbers must
  be finite and fit in 64 bits.
- Timestamps: any offset is taken, but the instant must lie in years 1..9999 in UTC,
  which is what PostgreSQL stores and reads back: ``9999-12-31T23:59:59-14:00`` is year
  10000 in UTC and ``0001-01-01T00:00:00+14:00`` is 1 BC, which psycopg (and Python)
  cannot read, so accepting them broke every read of the tenant (issue 12, item 1).
- Size: metadata is limited in encoded bytes (``MAX_METADATA_BYTES``) and nesting
  (``MAX_METADATA_DEPTH``); event text in characters (``MAX_TEXT_CHARS``).

The limits are those of the app's settings: ``create_app`` hands them over with
:func:`use_limits` (FastAPI validates request bodies with no context to carry them). A
process that validates without an app (a test, a script) gets its environment's.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, StringConstraints

from common.settings import IngestSettings, SearchSettings, Settings, get_settings

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

_limits: Settings | None = None  # what use_limits was given


def use_limits(settings: Settings) -> None:
    """Validate with ``settings``' limits from now on (the gateway's, at start-up)."""
    global _limits
    _limits = settings


def _settings() -> Settings:
    return _limits or get_settings()


def ingest_limits() -> IngestSettings:
    return _settings().ingest


def search_limits() -> SearchSettings:
    return _settings().search


def no_nul(value: str) -> str:
    """Refuse what PostgreSQL cannot store in text: NUL, and lone surrogates (JSON's
    ``"\\ud800"`` parses to one; it is not UTF-8, so the insert would fail)."""
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\u0000) characters")
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            raise ValueError("must not contain lone surrogates (\\ud800-\\udfff)") from None
    return value


def nested_deeper_than(text: str, limit: int) -> bool:
    """Whether JSON ``text`` nests objects and lists deeper than ``limit``, found by a scan
    rather than by parsing: ``json.loads`` recurses once a level and raises RecursionError
    around a thousand (a 500 before issue 12). Brackets inside strings do not count."""
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def text_within_limit(value: str) -> str:
    no_nul(value)
    limit = ingest_limits().max_text_chars
    if len(value) > limit:
        raise ValueError(f"must be at most {limit} characters (MAX_TEXT_CHARS)")
    return value


def _check_node(node: Any, depth: int, max_depth: int) -> None:
    if isinstance(node, dict | list):
        if depth > max_depth:
            raise ValueError(f"must be nested at most {max_depth} levels (MAX_METADATA_DEPTH)")
        children = node.values() if isinstance(node, dict) else node
        if isinstance(node, dict):
            for key in node:
                no_nul(key)
        for child in children:
            _check_node(child, depth + 1, max_depth)
    elif isinstance(node, str):
        no_nul(node)
    elif isinstance(node, bool) or node is None:
        return
    elif isinstance(node, int):
        if not INT64_MIN <= node <= INT64_MAX:
            raise ValueError("integers must fit in 64 bits")
    elif isinstance(node, float) and not math.isfinite(node):
        raise ValueError("numbers must be finite")


def metadata_within_limits(value: dict[str, Any]) -> dict[str, Any]:
    """Refuse metadata that is too deep, too big, or holds NULs or unstorable numbers."""
    settings = ingest_limits()
    _check_node(value, 1, settings.max_metadata_depth)
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > settings.max_metadata_bytes:
        raise ValueError(
            f"must be at most {settings.max_metadata_bytes} bytes as JSON "
            f"(MAX_METADATA_BYTES); got {size}"
        )
    return value


def filter_values_within_limit(value: list[Any]) -> list[Any]:
    """A search filter's list of values (source, type, ...) is bounded: each value is a
    clause of the query."""
    limit = search_limits().max_filter_values
    if len(value) > limit:
        raise ValueError(f"must have at most {limit} values (MAX_FILTER_VALUES)")
    return value


def top_k_within_limit(value: int) -> int:
    """How many results a search may ask for; each is a row read and sent."""
    limit = search_limits().search_max_top_k
    if value > limit:
        raise ValueError(f"must be at most {limit} (SEARCH_MAX_TOP_K)")
    return value


def _int_or_float(literal: str) -> int | float:
    value = int(literal)
    return value if INT64_MIN <= value <= INT64_MAX else float(value)


def load_stored_json(text: str | bytes) -> Any:
    """Read jsonb back as it was given. PostgreSQL prints the number 1e20 as
    ``100000000000000000000``: an integer beyond 64 bits that orjson (exports, stored
    answers) cannot encode. Metadata never holds such integers (see above), so one read
    back can only have been a float, and becomes one again."""
    return json.loads(text, parse_int=_int_or_float)


def _exponent_float(node: Any) -> bool:
    """A float that Python writes with an exponent and no fraction (``1e+16``): every
    float from 1e16 up is whole, and PostgreSQL keeps such a number as the integer
    ``10000000000000000``, which reads back as an int."""
    return isinstance(node, float) and node.is_integer() and "e" in repr(node)


def _holds_exponent_float(node: Any) -> bool:
    if isinstance(node, dict):
        return any(_holds_exponent_float(v) for v in node.values())
    if isinstance(node, list):
        return any(_holds_exponent_float(v) for v in node)
    return _exponent_float(node)


def _encode(node: Any) -> str:
    if isinstance(node, dict):
        return "{" + ",".join(json.dumps(k) + ":" + _encode(v) for k, v in node.items()) + "}"
    if isinstance(node, list):
        return "[" + ",".join(_encode(v) for v in node) + "]"
    if _exponent_float(node):
        return f"{int(node)}.0"  # exact: a whole float is an integer, and ".0" keeps it a float
    return json.dumps(node)


def dump_stored_json(value: Any) -> str:
    """JSON for a jsonb column such that every float reads back as a float: a whole float
    written with an exponent is written as ``10000000000000000.0`` instead, which
    PostgreSQL's numeric keeps with its fraction (``1e16`` would come back as the int
    ``10000000000000000``). Anything else is ``json.dumps``, SQLAlchemy's default."""
    return _encode(value) if _holds_exponent_float(value) else json.dumps(value)


def rfc3339_only(value: Any) -> Any:
    """Timestamps are RFC 3339 strings, as the OpenAPI document says; pydantic would also
    take a number as Unix time, so that ``"occurred_at": 1e-247`` meant 1970."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("must be an RFC 3339 date-time string, e.g. 2026-11-01T09:00:00Z")
    return value


TIMESTAMP_RANGE = "0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z"


def utc_in_range(value: datetime) -> datetime:
    """The instant in UTC, refused when that falls outside years 1..9999 (see above)."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            f"must lie within {TIMESTAMP_RANGE} once converted to UTC; {value.isoformat()} does not"
        ) from None


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=128),
    AfterValidator(no_nul),
]
SafeStr = Annotated[str, AfterValidator(no_nul)]
EventText = Annotated[str, StringConstraints(min_length=1), AfterValidator(text_within_limit)]
Metadata = Annotated[dict[str, Any], AfterValidator(metadata_within_limits)]
FilterValues = Annotated[list[Name], AfterValidator(filter_values_within_limit)]
# An upstream's own id of a thing (common/lifecycle/subjects.py), kept exactly as given.
SubjectName = Annotated[
    str, StringConstraints(min_length=1, max_length=255), AfterValidator(no_nul)
]
SubjectValues = Annotated[list[SubjectName], AfterValidator(filter_values_within_limit)]
TopK = Annotated[
    int,
    Field(ge=1, description="results wanted, at most SEARCH_MAX_TOP_K (100 by default)"),
    AfterValidator(top_k_within_limit),
]
Timestamp = Annotated[AwareDatetime, BeforeValidator(rfc3339_only), AfterValidator(utc_in_range)]

"""What each ranking returns: the event's public fields, its score and its rank."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from common.models import Event

# The columns every ranking selects, in this order (labelled: the CTE of the dense ranking
# must expose the same names as a plain select).
COLUMNS = (
    Event.id.label("id"),
    Event.text.label("text"),
    Event.source.label("source"),
    Event.type.label("type"),
    Event.meta.label("meta"),
    Event.occurred_at.label("occurred_at"),
    Event.subject.label("subject"),
)


@dataclass
class Candidate:
    id: uuid.UUID
    text: str
    source: str
    type: str
    metadata: dict[str, Any]
    occurred_at: datetime | None
    score: float
    subject: str | None = None
    rankings: dict[str, int] = field(default_factory=dict)
    # The character span of the text that matched: the best chunk (dense), or the part
    # around the words found (keyword, filled in for the final hits only).
    passage: tuple[int, int] | None = None
    # Keyword hits: the span of the best unit (chunk, or whole text), where the passage around
    # the words found is looked for.
    region: tuple[int, int] | None = None


def from_row(
    row: Any,
    score: float,
    ranking: str,
    rank: int,
    passage: tuple[int, int] | None = None,
    region: tuple[int, int] | None = None,
) -> Candidate:
    """A candidate from a row selecting :data:`COLUMNS`, ranked ``rank`` (1-based)."""
    return Candidate(
        id=row.id,
        text=row.text,
        source=row.source,
        type=row.type,
        metadata=row.meta,
        occurred_at=row.occurred_at,
        subject=row.subject,
        score=score,
        rankings={ranking: rank},
        passage=passage,
        region=region,
    )

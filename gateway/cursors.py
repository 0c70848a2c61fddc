"""Opaque cursors of the keyset-paginated lists (events, dead letters), newest first.

A cursor is the ``(created_at, id)`` of the last row of a page, base64url-encoded; the next
page is the rows strictly before it in ``created_at DESC, id DESC`` order. Keyset rather
than offset pagination: a page costs the same however deep it is, and rows added while a
client pages through are not listed twice.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

from common.errors import AppError

T = TypeVar("T")


class InvalidCursor(AppError):
    status_code = 400
    code = "invalid_cursor"


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The position after which the next page starts; a mangled cursor is the client's 400."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, row_id = raw.split("|")
        created_at = datetime.fromisoformat(stamp)
        if created_at.tzinfo is None:  # every cursor given out carries its UTC offset
            raise ValueError(stamp)
        return created_at, uuid.UUID(row_id)
    except ValueError:
        raise InvalidCursor("the cursor is not one this API gave") from None


def paged(
    rows: Sequence[T], limit: int, position: Callable[[T], tuple[datetime, uuid.UUID]]
) -> tuple[list[T], str | None]:
    """A page of a list queried with ``limit + 1`` rows: its first ``limit`` rows and the
    cursor of the next page (``position`` of the last row shown), ``None`` on the last."""
    page = list(rows[:limit])
    more = len(rows) > limit and bool(page)
    return page, encode_cursor(*position(page[-1])) if more else None

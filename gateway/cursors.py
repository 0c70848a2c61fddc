"""Opaque cursors of the keyset-paginated lists (events, dead letters), newest first.

A cursor is the ``(created_at, id)`` of the last row of a page, base64url-encoded; the next
page is the rows strictly before it in ``created_at DESC, id DESC`` order. Keyset rather
than offset pagination: a page costs the same however deep it is, and rows added while a
client pages through are not listed twice.
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime

from common.errors import AppError


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

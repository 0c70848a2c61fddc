"""Idempotency keys with Stripe semantics (draft-ietf-httpapi-idempotency-key-header).

PostgreSQL decides: the unique (tenant, idempotency_key) makes the first request's INSERT
the only one, and a later request with the key finds that event (its fingerprint says
whether the body is the same). Redis holds, under ``idem:<tenant>:<sha256(key)>``, the
answer once the first request has handed its event to the queue (``{"state": "done", "fp",
"status", "body", "location"}``, kept ``IDEMPOTENCY_TTL_S``, 24 h), written in the same round
trip as the embed message.

So a repeat of the key meets one of:

- another body: 422 ``idempotency_key_reused``;
- the same body, its event recorded less than ``IDEMPOTENCY_LOCK_TTL_S`` ago: the first
  request may still be handing it off (and would withdraw it if the queue refused it), so
  only a stored answer for that very event is replayed; without one, 409
  ``idempotency_key_in_progress``. A request that died after its INSERT leaves its event to
  the sweeper, and its key answers 409 until the event is that old;
- the same body, an older event: the first answer, rebuilt from the row (the same bytes:
  the answer is a pure function of it), whatever Redis has or has lost.

There is no lock before the INSERT (issue 16): it was a Redis round trip on every POST for
what the unique index already decides; a concurrent repeat waits on the index for the
first's INSERT (one autocommit statement) and then sees its row. A request that fails
before it is accepted leaves nothing behind, so its retry is processed afresh; one whose
hand-off failed withdraws its row and deletes the answer that may have gone along.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from common.errors import AppError

MAX_KEY_LENGTH = 255
log = logging.getLogger("eventsearch.gateway")


def _unfit(char: str) -> bool:
    """C0 and C1 control characters, DEL, the line and paragraph separators (control
    characters in all but name: they break lines in logs and JavaScript), and lone
    surrogates (not UTF-8, so neither storable nor echoable)."""
    code = ord(char)
    return code < 32 or 127 <= code <= 159 or code in (0x2028, 0x2029) or 0xD800 <= code <= 0xDFFF


def check_idempotency_key(key: str | None, required: bool) -> str | None:
    """Validate a key (at most 255 characters, none of them :func:`_unfit`)."""
    if key is None or key == "":
        if required:
            raise AppError(
                "the Idempotency-Key header is required on this endpoint",
                code="idempotency_key_missing",
            )
        return None
    if len(key) > MAX_KEY_LENGTH or any(_unfit(c) for c in key):
        raise AppError(
            f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} characters without control characters",
            code="idempotency_key_invalid",
        )
    return key


def _invalid_header(why: str) -> AppError:
    return AppError(f"Idempotency-Key {why}", code="idempotency_key_invalid")


def parse_sf_string(value: str) -> str:
    """The string an RFC 8941 sf-string stands for: ``"..."`` of printable ASCII, with
    ``\\"`` and ``\\\\`` the only escapes (section 4.2.5). Parameters after it
    (``"k";p=1``) are refused rather than silently dropped: the draft defines none."""
    text = value.strip(" ")
    if not text.startswith('"'):
        raise _invalid_header("as a quoted string must start with a double quote")
    chars: list[str] = []
    index = 1
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 1
            if index == len(text) or text[index] not in '"\\':
                raise _invalid_header('as a quoted string may escape only \\" and \\\\')
            chars.append(text[index])
        elif char == '"':
            if text[index + 1 :]:
                raise _invalid_header("must be one quoted string, without parameters")
            if not chars:
                raise _invalid_header("must not be an empty string")
            return "".join(chars)
        elif not " " <= char <= "~":
            raise _invalid_header("as a quoted string holds printable ASCII only")
        else:
            chars.append(char)
        index += 1
    raise _invalid_header("has an opening quote without a closing one")


def key_from_header(value: str | None, required: bool) -> str | None:
    """The key an ``Idempotency-Key`` header carries, validated. The IETF draft makes the
    header an RFC 8941 sf-string (``Idempotency-Key: "8e03978e"``); most clients send the
    bare value (``8e03978e``). Both are the same key: a value that starts with a double
    quote is read as an sf-string, any other as the key itself."""
    if value is not None and value.lstrip(" ").startswith('"'):
        value = parse_sf_string(value)
    return check_idempotency_key(value, required)


def fingerprint(payload: Any) -> str:
    """sha256 of the canonical JSON of a parsed body: key order and spacing do not matter."""
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


def key_reused() -> AppError:
    return AppError(
        "this Idempotency-Key was already used with a different request body",
        code="idempotency_key_reused",
        status_code=422,
    )


def in_progress(retry_after: int) -> AppError:
    return AppError(
        "a request with this Idempotency-Key is still being processed; retry later",
        code="idempotency_key_in_progress",
        status_code=409,
        headers={"Retry-After": str(retry_after)},
    )


@dataclass(frozen=True)
class Stored:
    """A finished answer, as sent."""

    status: int
    body: bytes
    location: str


@dataclass
class IdempotencyRecord:
    """Where the answer to a key is stored once its event is on the queue."""

    redis: Redis
    name: str
    fp: str
    ttl_s: int

    async def stored(self) -> Stored | None:
        """The answer stored for this key and body, or None: none yet (the first request is
        still handing its event off, or died), or Redis unreachable."""
        try:
            raw = await self.redis.get(self.name)
        except RedisError as error:
            log.warning("could not read idempotent answer %s: %r", self.name, error)
            return None
        if raw is None:
            return None
        record = orjson.loads(raw)
        # An older gateway's "in_progress" lock (a rolling upgrade) is no answer either.
        if record.get("state") != "done" or record.get("fp") != self.fp:
            return None
        return Stored(record["status"], base64.b64decode(record["body"]), record["location"])

    def _done(self, answer: Stored) -> bytes:
        return orjson.dumps(
            {
                "state": "done",
                "fp": self.fp,
                "status": answer.status,
                "body": base64.b64encode(answer.body).decode(),
                "location": answer.location,
            }
        )

    def completion(self, answer: Stored) -> Completion:
        """The answer's ``SET``, sent along with the hand-off (one round trip for the embed
        message and the record, issue 16)."""
        return Completion(self, answer)

    async def release(self) -> None:
        """Forget the answer: the request was not accepted after all (its hand-off failed),
        so its retry starts afresh."""
        await self.redis.delete(self.name)


@dataclass(frozen=True)
class Completion:
    """The stored answer's ``SET``, sent in another request's pipeline
    (``common.lifecycle.handoff.SentAlong``)."""

    record: IdempotencyRecord
    answer: Stored

    def queue(self, pipe: Pipeline) -> None:
        pipe.set(self.record.name, self.record._done(self.answer), ex=self.record.ttl_s)

    def sent(self, results: list[Any]) -> None:
        # The event is accepted and on the queue: a failure to store its answer must not
        # turn that into an error. A repeat then gets 409 until IDEMPOTENCY_LOCK_TTL_S has
        # passed, and after it the same answer, rebuilt from the row.
        [stored] = results
        if isinstance(stored, Exception):
            log.warning("could not store idempotent answer %s: %r", self.record.name, stored)


def record_for(redis: Redis, tenant: str, key: str, fp: str, ttl_s: int) -> IdempotencyRecord:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return IdempotencyRecord(redis, f"idem:{tenant}:{digest}", fp, ttl_s)

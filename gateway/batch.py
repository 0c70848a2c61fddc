"""``POST /api/v1/events/batch``: many events in one request, each judged on its own.

Per item, in order: ``accepted`` (a new id), ``duplicate`` (the id first given for that
idempotency key, also for a repeat inside the same batch) or ``rejected`` (the validation
error). One bad item rejects only itself. All accepted items are inserted in one statement
and published in chunks of a worker batch.
"""

from __future__ import annotations

from typing import Any

from asgi_correlation_id import correlation_id
from fastapi import APIRouter
from pydantic import ValidationError

from common import metrics
from common.errors import AppError
from common.lifecycle.handoff import hand_off_async
from common.schemas import BatchIn, BatchItemResult, BatchResult, EventIn, ItemError
from gateway.auth import IngestKey
from gateway.cloudevents import BATCH_OPENAPI, ITEM_ERROR
from gateway.deps import RedisDep, SessionDep, SettingsDep
from gateway.idempotency import check_idempotency_key, fingerprint
from gateway.ingest import NewEvent, record_events

router = APIRouter(prefix="/api/v1/events", tags=["events"])


def _rejected(index: int, key: str | None, error: ItemError) -> BatchItemResult:
    return BatchItemResult(index=index, status="rejected", idempotency_key=key, error=error)


def _key_of(raw: Any) -> str | None:
    """A rejected item's key, to echo: null when it is not a string or not UTF-8 (a lone
    surrogate cannot be written in the answer)."""
    key = raw.get("idempotency_key") if isinstance(raw, dict) else None
    if not isinstance(key, str):
        return None
    try:
        key.encode()
    except UnicodeEncodeError:
        return None
    return key


def _validate(raw: Any, required: bool) -> tuple[str | None, NewEvent]:
    """One item: its key checked, its body validated (raises AppError or ValidationError)."""
    if not isinstance(raw, dict):
        raise AppError("each event must be a JSON object", code="validation_error")
    if ITEM_ERROR in raw:  # a CloudEvent the SDK refused (gateway/cloudevents.py)
        raise AppError(str(raw[ITEM_ERROR]), code="invalid_cloudevent")
    body = {k: v for k, v in raw.items() if k != "idempotency_key"}
    key = raw.get("idempotency_key")
    if key is not None and not isinstance(key, str):
        raise AppError("idempotency_key must be a string", code="idempotency_key_invalid")
    key = check_idempotency_key(key, required)
    # Validate before fingerprinting: orjson cannot encode what validation refuses (ints
    # over 64 bits), which would otherwise be a 500 instead of this item's rejection.
    event = EventIn.model_validate(body)
    return key, NewEvent(key, fingerprint(body), event)


@router.post(
    "/batch",
    response_model=BatchResult,
    responses={503: {"description": "a store is down; nothing was recorded"}},
    openapi_extra=BATCH_OPENAPI,
)
async def ingest_batch(
    batch: BatchIn,
    session: SessionDep,
    redis: RedisDep,
    settings: SettingsDep,
    caller: IngestKey,
) -> BatchResult:
    """Record up to ``BATCH_MAX_ITEMS`` events; answers 200 with one result per item."""
    if len(batch.events) > settings.batch_max_items:
        raise AppError(
            f"a batch holds at most {settings.batch_max_items} events; got {len(batch.events)}",
            code="batch_too_large",
            status_code=422,
        )
    results: list[BatchItemResult | None] = [None] * len(batch.events)
    new: list[tuple[int, NewEvent]] = []
    first_of: dict[str, tuple[int, str]] = {}  # key -> (index, fingerprint) in this batch
    repeats: list[tuple[int, str]] = []
    for index, raw in enumerate(batch.events):
        try:
            key, item = _validate(raw, settings.idempotency_required)
        except AppError as error:
            results[index] = _rejected(
                index, _key_of(raw), ItemError(code=error.code, message=error.message)
            )
            continue
        except ValidationError as error:
            details = error.errors(include_url=False, include_input=False, include_context=False)
            fields = ", ".join(sorted({".".join(map(str, d["loc"])) or "item" for d in details}))
            results[index] = _rejected(
                index,
                _key_of(raw),
                ItemError(
                    code="validation_error",
                    message=f"invalid fields: {fields}",
                    details=[dict(d) for d in details],
                ),
            )
            continue
        if key is not None and key in first_of:
            if first_of[key][1] != item.fp:
                results[index] = _rejected(
                    index,
                    key,
                    ItemError(
                        code="idempotency_key_reused",
                        message="idempotency_key used earlier in this batch with another body",
                    ),
                )
            else:
                repeats.append((index, key))
            continue
        if key is not None:
            first_of[key] = (index, item.fp)
        new.append((index, item))

    outcomes = await record_events(
        session, caller.tenant, [item for _, item in new], settings.subject_delete_types
    )
    fresh: list[str] = []
    for (index, item), outcome in zip(new, outcomes, strict=True):
        if isinstance(outcome, AppError):
            results[index] = _rejected(
                index, item.key, ItemError(code=outcome.code, message=outcome.message)
            )
            continue
        assert not isinstance(outcome, Exception)
        results[index] = BatchItemResult(
            index=index,
            status="duplicate" if outcome.replayed else "accepted",
            id=outcome.accepted.id,
            idempotency_key=item.key,
        )
        if not outcome.replayed:
            fresh.append(str(outcome.accepted.id))
    for index, key in repeats:
        first = results[first_of[key][0]]
        assert first is not None
        results[index] = (
            BatchItemResult(index=index, status="duplicate", id=first.id, idempotency_key=key)
            if first.id is not None
            else first.model_copy(update={"index": index})
        )
    await session.commit()
    await hand_off_async(session, redis, fresh, correlation_id.get(), "withdraw", settings)
    final = [r for r in results if r is not None]
    answer = BatchResult(
        accepted=sum(r.status == "accepted" for r in final),
        duplicate=sum(r.status == "duplicate" for r in final),
        rejected=sum(r.status == "rejected" for r in final),
        results=final,
    )
    metrics.count_events(answer.accepted, answer.duplicate, answer.rejected)
    return answer

"""The baseline of ``ingest_single_vs_bare``: a bare FastAPI endpoint that validates the same
body and pushes it to Redis, nothing else. ``uvicorn bench.bare_app:app``."""

from __future__ import annotations

import os

import orjson
from fastapi import FastAPI
from redis.asyncio import Redis

from common.schemas import EventIn

app = FastAPI()
redis = Redis.from_url(os.environ["REDIS_URL"])


@app.post("/bare", status_code=202)
async def bare(event: EventIn) -> dict[str, str]:
    await redis.lpush("bare", orjson.dumps(event.model_dump(mode="json")))
    return {"status": "queued"}

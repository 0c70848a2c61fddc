"""One typed settings object, read once from the environment.

A wrong or missing setting must fail at start with one clear line, never at the first
request: processes call :func:`get_settings` at import/start-up, and :func:`load_or_exit`
turns a validation error into a single line on stderr and exit status 2.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

EmbedderName = Literal["ollama", "openai", "local"]
SearchModeName = Literal["dense", "keyword", "hybrid"]

DEFAULT_MODELS: dict[str, str] = {
    "ollama": "nomic-embed-text",
    "local": "all-MiniLM-L6-v2",
    "openai": "text-embedding-3-small",
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    environment: Literal["development", "test", "production"] = "development"

    # Stores. postgresql:// URLs are accepted and driven through psycopg 3.
    database_url: str = Field(description="PostgreSQL with pgvector, e.g. postgresql://u:p@h/db")
    redis_url: str = Field(description="Redis, broker and idempotency store, e.g. redis://h:6379/0")
    db_pool_size: int = Field(10, ge=1, le=200)

    # Embedding.
    embedder: EmbedderName = "local"
    embed_model: str | None = None
    embed_dim: int = Field(384, ge=1, le=16000, description="dimension of the vector column")
    ollama_url: str = "http://localhost:11434"
    openai_url: str = "http://localhost:8080/v1"
    openai_api_key: str | None = None
    embed_timeout_s: float = Field(30.0, gt=0)
    embed_batch_size: int = Field(64, ge=1, le=4096)
    embed_batch_wait_ms: int = Field(200, ge=0, le=60_000)
    embed_max_attempts: int = Field(5, ge=1, le=100)
    retry_backoff_s: float = Field(1.0, gt=0, description="first retry delay; doubles each time")
    retry_backoff_max_s: float = Field(300.0, gt=0)
    worker_concurrency: int = Field(2, ge=1, le=64)

    # Ingest.
    idempotency_required: bool = True
    idempotency_ttl_s: int = Field(24 * 3600, ge=60)
    idempotency_lock_ttl_s: int = Field(
        30, ge=1, description="how long an unfinished request holds its key (a crash frees it)"
    )
    batch_max_items: int = Field(1000, ge=1, le=100_000)
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    max_text_chars: int = Field(100_000, ge=1)

    # Search.
    search_max_top_k: int = Field(100, ge=1, le=1000)
    hnsw_ef_search: int = Field(64, ge=1, le=1000)
    # Graph shape of the HNSW index, fixed when the first migration builds it (pgvector's
    # defaults are 16 / 64; more is better recall for a slower build).
    hnsw_m: int = Field(16, ge=2, le=100)
    hnsw_ef_construction: int = Field(64, ge=4, le=1000)
    query_cache_size: int = Field(
        1024, ge=0, le=1_000_000, description="query vectors kept per gateway process (LRU)"
    )
    # Filtered k-NN keeps scanning the HNSW graph (pgvector iterative scans) until top_k rows
    # pass the filters or this many tuples were visited: the bound on a hopeless filter's cost.
    hnsw_max_scan_tuples: int = Field(20_000, ge=1, le=10_000_000)
    search_default_mode: SearchModeName = Field(
        "hybrid", description="mode of a search that names none (chosen by `eventsearch eval`)"
    )
    rrf_k: int = Field(60, ge=1, le=10_000, description="reciprocal rank fusion constant")
    rrf_weight_dense: float = Field(1.0, ge=0)
    rrf_weight_keyword: float = Field(1.0, ge=0)
    hybrid_candidates: int = Field(
        50, ge=1, le=1000, description="depth of each ranking fused by hybrid (at least top_k)"
    )

    # Auth.
    auth_cache_ttl_s: float = Field(30.0, ge=0, description="how long a checked key is trusted")

    # Operations.
    docs_enabled: bool = True
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: str) -> str:
        if not value.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
            raise ValueError("must be a postgresql:// URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_only(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// URL")
        return value

    @property
    def model_name(self) -> str:
        """The embedding model in use: EMBED_MODEL, or the embedder's default."""
        return self.embed_model or DEFAULT_MODELS[self.embedder]

    @property
    def sqlalchemy_url(self) -> str:
        """DATABASE_URL with the psycopg 3 driver named, as SQLAlchemy wants it."""
        scheme, rest = self.database_url.split("://", 1)
        return (
            f"postgresql+psycopg://{rest}" if scheme != "postgresql+psycopg" else self.database_url
        )


def describe_error(error: ValidationError) -> str:
    """One line naming every bad setting by its environment variable."""
    parts = []
    for item in error.errors():
        name = "_".join(str(p) for p in item["loc"]).upper() or "settings"
        message = "is required" if item["type"] == "missing" else item["msg"]
        parts.append(f"{name} {message}")
    return "eventsearch: invalid configuration: " + "; ".join(parts)


@lru_cache
def get_settings() -> Settings:
    """The process's settings; raises ``ValidationError`` when the environment is wrong."""
    return Settings()


def load_or_exit() -> Settings:
    """Settings for a process entry point: a bad environment exits 2 with one line on stderr."""
    try:
        return get_settings()
    except ValidationError as error:
        print(describe_error(error), file=sys.stderr, flush=True)
        raise SystemExit(2) from None

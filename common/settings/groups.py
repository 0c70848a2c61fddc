"""Frozen views of the settings by concern (issue 13, point 6).

The environment is read in one place, :class:`common.settings.environment.Settings`, a flat
class whose field names are the environment variables. Code that needs one concern takes
the view of it (``settings.search``, ``settings.embedding``, ...): a frozen dataclass with
the same field names as the flat class, so ``settings.search.rrf_k == settings.rrf_k``.
Every field of the flat class is in exactly one view (tests/test_settings_groups.py).

A view holds values only: checks and defaults stay on the flat class, and the few derived
values (``model_name``, ``context_tokens``, ``jwt_enabled``, ``sqlalchemy_url``) are
computed here, on the view that holds their inputs, and read through by the flat class.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import SecretStr

EmbedderName = Literal["ollama", "openai", "local"]
SearchModeName = Literal["dense", "keyword", "hybrid"]
FusionName = Literal["rrf", "linear"]
LocalRuntimeName = Literal["onnx", "onnx-int8", "torch"]
EnvironmentName = Literal["development", "test", "production"]
LogLevelName = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LogFormatName = Literal["json", "console"]

DEFAULT_MODELS: dict[str, str] = {
    "ollama": "nomic-embed-text",
    "local": "all-MiniLM-L6-v2",
    "openai": "text-embedding-3-small",
}

# Context of each embedder's default model, in tokens (EMBED_CONTEXT_TOKENS overrides).
LOCAL_CONTEXT_TOKENS = 256  # all-MiniLM-L6-v2 (common/embedders/tokenizer.MAX_MODEL_TOKENS)
DEFAULT_CONTEXT_TOKENS: dict[str, int] = {"ollama": 2048, "openai": 8191}
LOCAL_CHUNK_TOKENS = 128  # the sequence length all-MiniLM-L6-v2 was fine-tuned at
SERVER_CHUNK_TOKENS = 256  # ollama, openai: not measured here (README, "Long events")


class _View:
    """Built from any object carrying the view's fields (the flat settings)."""

    @classmethod
    def of(cls, source: Any) -> Self:
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        return cls(**{name: getattr(source, name) for name in names})


@dataclasses.dataclass(frozen=True, slots=True)
class StoresSettings(_View):
    """PostgreSQL (events, vectors) and Redis (broker, idempotency, rate limits, caches)."""

    database_url: str
    redis_url: str
    db_pool_size: int

    @property
    def sqlalchemy_url(self) -> str:
        """DATABASE_URL with the psycopg 3 driver named, as SQLAlchemy wants it."""
        scheme, rest = self.database_url.split("://", 1)
        return (
            f"postgresql+psycopg://{rest}" if scheme != "postgresql+psycopg" else self.database_url
        )


@dataclasses.dataclass(frozen=True, slots=True)
class QueueSettings(_View):
    """The workers' broker, time limits, retries and the sweeper."""

    worker_concurrency: int
    task_time_limit_s: float
    broker_visibility_timeout_s: int
    sweep_interval_s: float
    sweep_after_s: float
    retry_backoff_s: float
    retry_backoff_max_s: float
    embed_max_attempts: int


@dataclasses.dataclass(frozen=True, slots=True)
class EmbeddingSettings(_View):
    """The embedder, its model and server, its batches and the local runtime."""

    embedder: EmbedderName
    embed_model: str | None
    embed_dim: int
    ollama_url: str
    openai_url: str
    openai_api_key: str | None
    embed_timeout_s: float
    embed_batch_size: int
    embed_batch_wait_ms: int
    embed_max_concurrency: int
    embed_batch_max_chars: int
    embed_batch_max_tokens: int
    embed_context_tokens: int | None
    local_runtime: LocalRuntimeName
    local_threads: int
    local_cache_dir: Path | None

    @property
    def model_name(self) -> str:
        """The embedding model in use: EMBED_MODEL, or the embedder's default."""
        return self.embed_model or DEFAULT_MODELS[self.embedder]

    @property
    def context_tokens(self) -> int:
        """The model's context in tokens: EMBED_CONTEXT_TOKENS, or the embedder's default."""
        if self.embedder == "local":
            return min(self.embed_context_tokens or LOCAL_CONTEXT_TOKENS, LOCAL_CONTEXT_TOKENS)
        return self.embed_context_tokens or DEFAULT_CONTEXT_TOKENS[self.embedder]


@dataclasses.dataclass(frozen=True, slots=True)
class ChunkingSettings(_View):
    """How an event's text is cut into chunks (issue 14)."""

    chunk_tokens: int
    chunk_overlap_tokens: int
    chunk_whole_tokens: int | None
    embed_chars_per_token: float


@dataclasses.dataclass(frozen=True, slots=True)
class SearchSettings(_View):
    """Search requests, the HNSW index, the query cache and hybrid fusion."""

    search_max_top_k: int
    search_default_mode: SearchModeName
    max_filter_values: int
    hnsw_ef_search: int
    hnsw_m: int
    hnsw_ef_construction: int
    hnsw_max_scan_tuples: int
    query_cache_size: int
    rrf_k: int
    rrf_weight_dense: float
    rrf_weight_keyword: float
    hybrid_candidates: int
    hybrid_fusion: FusionName


@dataclasses.dataclass(frozen=True, slots=True)
class IngestSettings(_View):
    """What an accepted event may hold, idempotency keys, subjects and CloudEvents."""

    idempotency_required: bool
    idempotency_ttl_s: int
    idempotency_lock_ttl_s: int
    batch_max_items: int
    max_text_chars: int
    max_metadata_bytes: int
    max_metadata_depth: int
    subject_delete_types: list[str]
    cloudevents_text_field: str


@dataclasses.dataclass(frozen=True, slots=True)
class AuthSettings(_View):
    """API keys, JWT bearer tokens, failed authentications and rate limits."""

    auth_cache_ttl_s: float
    auth_negative_cache_ttl_s: float
    auth_failure_limit: str
    rate_limit_enabled: bool
    rate_limit_ingest: str
    rate_limit_search: str
    rate_limit_read: str
    rate_limit_admin: str
    jwt_jwks_url: str | None
    jwt_hs256_secret: SecretStr | None
    jwt_issuer: str | None
    jwt_audience: str | None
    jwt_algorithms: list[str]
    jwt_leeway_s: float
    jwt_tenant_claim: str
    jwt_scope_claim: str
    jwt_scope_prefix: str
    jwt_jwks_cache_s: float
    jwt_jwks_min_refresh_s: float
    jwt_jwks_timeout_s: float

    @property
    def jwt_enabled(self) -> bool:
        return bool(self.jwt_jwks_url or self.jwt_hs256_secret)


@dataclasses.dataclass(frozen=True, slots=True)
class HttpSettings(_View):
    """The gateway's HTTP surface: body and header limits, timeouts, CORS, docs."""

    max_body_bytes: int
    max_batch_body_bytes: int
    http_max_header_bytes: int
    http_max_headers: int
    http_header_timeout_s: float
    http_body_timeout_s: float
    cors_origins: list[str]
    docs_enabled: bool


@dataclasses.dataclass(frozen=True, slots=True)
class ObservabilitySettings(_View):
    """The kind of deployment, logs, worker metrics and heartbeats, stats, Flower."""

    environment: EnvironmentName
    log_level: LogLevelName
    log_format: LogFormatName
    worker_metrics_port: int
    worker_metrics_host: str
    worker_heartbeat_s: float
    stats_cache_ttl_s: float
    stats_max_groups: int
    flower_user: str
    flower_password: SecretStr | None


class Views:
    """The views of the flat settings class (a base of it), and the values derived from
    its fields, each computed by the view that holds its inputs."""

    # Built afresh on each read (a few microseconds), not cached on the instance:
    # model_copy(update=...) copies the instance's __dict__, so a cached view would keep
    # the original's values in the copy.
    @property
    def stores(self) -> StoresSettings:
        return StoresSettings.of(self)

    @property
    def queue(self) -> QueueSettings:
        return QueueSettings.of(self)

    @property
    def embedding(self) -> EmbeddingSettings:
        return EmbeddingSettings.of(self)

    @property
    def chunking(self) -> ChunkingSettings:
        return ChunkingSettings.of(self)

    @property
    def search(self) -> SearchSettings:
        return SearchSettings.of(self)

    @property
    def ingest(self) -> IngestSettings:
        return IngestSettings.of(self)

    @property
    def auth(self) -> AuthSettings:
        return AuthSettings.of(self)

    @property
    def http(self) -> HttpSettings:
        return HttpSettings.of(self)

    @property
    def observability(self) -> ObservabilitySettings:
        return ObservabilitySettings.of(self)

    @property
    def context_tokens(self) -> int:
        """The model's context in tokens: EMBED_CONTEXT_TOKENS, or the embedder's default."""
        return self.embedding.context_tokens

    @property
    def model_name(self) -> str:
        """The embedding model in use: EMBED_MODEL, or the embedder's default."""
        return self.embedding.model_name

    @property
    def sqlalchemy_url(self) -> str:
        """DATABASE_URL with the psycopg 3 driver named, as SQLAlchemy wants it."""
        return self.stores.sqlalchemy_url

    @property
    def jwt_enabled(self) -> bool:
        return self.auth.jwt_enabled


# Every view, by the name of the flat class's property that gives it.
GROUPS: dict[str, type[_View]] = {
    "stores": StoresSettings,
    "queue": QueueSettings,
    "embedding": EmbeddingSettings,
    "chunking": ChunkingSettings,
    "search": SearchSettings,
    "ingest": IngestSettings,
    "auth": AuthSettings,
    "http": HttpSettings,
    "observability": ObservabilitySettings,
}

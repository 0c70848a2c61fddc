"""One typed settings object, read once from the environment: a field per variable, with
its checks (:mod:`common.settings.loading` loads it at the entry points)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

from pydantic import (
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from common.settings.groups import (
    LOCAL_CHUNK_TOKENS,
    LOCAL_CONTEXT_TOKENS,
    SERVER_CHUNK_TOKENS,
    EmbedderName,
    EnvironmentName,
    FusionName,
    LocalRuntimeName,
    LogFormatName,
    LogLevelName,
    SearchModeName,
    Views,
)

# Secrets that ship in examples and tutorials: refused outside development and test.
PLACEHOLDER_SECRETS = frozenset(
    {
        "changeme",
        "change-me",
        "change_me",
        "changethis",
        "password",
        "postgres",
        "admin",
        "secret",
        "example",
        "default",
        "flower",
        "eventsearch",
        "123456",
        "12345678",
    }
)


class Settings(Views, BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    environment: EnvironmentName = "development"

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
    embed_max_concurrency: int = Field(
        4, ge=0, le=1024, description="calls in flight to the embedding server, all workers; 0: any"
    )
    embed_batch_max_chars: int = Field(
        250_000, ge=1, description="characters of text in one embedder call (a longer text alone)"
    )
    embed_max_attempts: int = Field(5, ge=1, le=100)
    # EMBEDDER=local's runtime (issue 16; measured in the README's Performance section):
    # onnx (ONNX Runtime fp32, the same vectors as torch), onnx-int8 (MatMul weights in int8,
    # faster, a measured quality cost) or torch (sentence-transformers).
    local_runtime: LocalRuntimeName = "onnx"
    local_threads: int = Field(
        0,
        ge=0,
        le=256,
        description=(
            "intra-op threads of the local model; 0: a worker's share of the cores per pool"
            " child, elsewhere the runtime's choice"
        ),
    )
    local_cache_dir: Path | None = Field(
        None, description="where the ONNX export is kept; default ~/.cache/eventsearch"
    )
    retry_backoff_s: float = Field(1.0, gt=0, description="first retry delay; doubles each time")
    retry_backoff_max_s: float = Field(300.0, gt=0)
    worker_concurrency: int = Field(2, ge=1, le=64)

    # Reliability (workers). A batch running longer than TASK_TIME_LIMIT_S is stopped; its
    # events are retried. An event still queued SWEEP_AFTER_S after its last hand-off is
    # published again by the sweeper (a message lost by the broker is not an event lost).
    task_time_limit_s: float = Field(300.0, gt=1, description="hard limit of one batch")
    broker_visibility_timeout_s: int = Field(3600, ge=10)
    sweep_interval_s: float = Field(5.0, gt=0, le=3600)
    sweep_after_s: float = Field(600.0, gt=0)

    # Ingest.
    idempotency_required: bool = True
    idempotency_ttl_s: int = Field(24 * 3600, ge=60)
    idempotency_lock_ttl_s: int = Field(
        30,
        ge=1,
        description="how long after its event is recorded a repeat of the key is 409 unless"
        " the first request's answer is stored (a request that died frees its key then)",
    )
    batch_max_items: int = Field(1000, ge=1, le=100_000)
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    max_text_chars: int = Field(100_000, ge=1)

    # Search.
    search_max_top_k: int = Field(100, ge=1, le=1000)
    # 160, not pgvector's 40: on real embeddings (README, Evaluation) dense search scored
    # exactly what exact search scores at 160 and 0.003 nDCG@10 below it at 64, for about
    # 0.5 ms more SQL per query. (make bench's id-set recall that first argued for 160 was
    # capped by distance ties in the stub's vectors; counted by distance it is 0.999.)
    hnsw_ef_search: int = Field(160, ge=1, le=1000)
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
    # Equal weights: with keyword ranked by best chunk, as dense is, 1:1 fused best on three
    # of four long and short sets and on average (docs/long-documents.md, "Keyword by chunk").
    rrf_weight_dense: float = Field(1.0, ge=0)
    rrf_weight_keyword: float = Field(1.0, ge=0)
    hybrid_candidates: int = Field(
        50, ge=1, le=1000, description="depth of each ranking fused by hybrid (at least top_k)"
    )
    hybrid_fusion: FusionName = Field(
        "rrf", description="how hybrid fuses a search naming none: rrf or linear (min-max)"
    )

    # Auth.
    auth_cache_ttl_s: float = Field(30.0, ge=0, description="how long a checked key is trusted")

    # Operations.
    docs_enabled: bool = True
    stats_cache_ttl_s: float = Field(
        5.0, ge=0, le=3600, description="how long GET /api/v1/stats is cached in Redis; 0: never"
    )
    stats_max_groups: int = Field(
        100, ge=1, le=10_000, description="sources and types listed by GET /api/v1/stats"
    )
    log_level: LogLevelName = "INFO"

    # Security and operations (issue 7): limits, rate limits, CORS, metrics, logs, Flower.
    max_batch_body_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="body limit of POST /api/v1/events/batch"
    )
    max_metadata_bytes: int = Field(16 * 1024, ge=2, description="metadata as compact JSON")
    max_metadata_depth: int = Field(8, ge=1, le=64, description="nesting of objects and lists")
    max_filter_values: int = Field(100, ge=1, description="values of one search filter")
    rate_limit_enabled: bool = True
    # Per API key, "<count>/<second|minute|hour|day>" (the `limits` package's notation).
    rate_limit_ingest: str = "1000/minute"
    rate_limit_search: str = "600/minute"
    rate_limit_read: str = "1200/minute"
    rate_limit_admin: str = "120/minute"
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated origins; empty: CORS off"
    )
    log_format: LogFormatName = "json"
    worker_metrics_port: int = Field(
        9808, ge=0, le=65535, description="the worker's Prometheus port; 0: none"
    )
    worker_metrics_host: str = "127.0.0.1"
    worker_heartbeat_s: float = Field(5.0, gt=0)
    flower_user: str = "admin"
    flower_password: SecretStr | None = None

    # Chunking (issue 14, README "Long events"): an event's text is embedded as chunks of
    # CHUNK_TOKENS tokens (special tokens included), neighbours overlapping by
    # CHUNK_OVERLAP_TOKENS; a text of at most CHUNK_WHOLE_TOKENS is one chunk. Unset, they
    # depend on the embedder (_chunk_defaults): with the local model 128 tokens a chunk (the
    # length all-MiniLM-L6-v2 was trained at, which ranks long documents best,
    # docs/long-documents.md) but whole up to its 256-piece window, so every event the model
    # read whole before chunks is still one chunk; with a server model 256 and whole up to
    # 256. The overlap is an eighth of CHUNK_TOKENS unless set.
    chunk_tokens: int = Field(
        SERVER_CHUNK_TOKENS,
        ge=16,
        le=100_000,
        description="tokens per chunk (within the model's context)",
    )
    chunk_overlap_tokens: int = Field(
        SERVER_CHUNK_TOKENS // 8, ge=0, description="tokens shared by neighbour chunks"
    )
    chunk_whole_tokens: int | None = Field(
        None, ge=16, le=1_000_000, description="a text of at most this many tokens is one chunk"
    )
    # The server model's context (ollama, openai): no input over it is ever sent. Unset: 256
    # for the local model, 2048 for ollama (its default num_ctx), 8191 for OpenAI's models.
    embed_context_tokens: int | None = Field(None, ge=16, le=1_000_000)
    # Characters standing for a token where the worker has no tokenizer (ollama, openai):
    # docstrings (prose and code) average 3.2 characters a word piece of the local model's
    # tokenizer, English prose more. At the defaults a chunk is 768 characters, which no
    # WordPiece or BPE tokenizer turns into more than a 2048-token context.
    embed_chars_per_token: float = Field(3.0, ge=1.0, le=10.0)
    embed_batch_max_tokens: int = Field(
        16_384, ge=1, description="tokens of chunks in one embedder call (a longer chunk alone)"
    )
    # Hardening (issue 12): authentication before the body, failure limits, the HTTP
    # server's own limits (gateway/server.py), JWT bearer tokens (gateway/jwt_auth.py).
    auth_failure_limit: str = Field(
        "30/minute", description="failed authentications per client address, then 429"
    )
    auth_negative_cache_ttl_s: float = Field(
        10.0, ge=0, le=3600, description="how long an unknown key is refused without a query"
    )
    http_max_header_bytes: int = Field(
        16 * 1024, ge=1024, le=1024 * 1024, description="request line and headers; over: 431"
    )
    http_max_headers: int = Field(100, ge=8, le=10_000, description="header fields; over: 431")
    http_header_timeout_s: float = Field(
        10.0, gt=0, le=600, description="a request's head must arrive within this; else 408"
    )
    http_body_timeout_s: float = Field(
        30.0, gt=0, le=3600, description="longest pause while a request body arrives; else 408"
    )
    jwt_jwks_url: str | None = Field(None, description="JWKS of the identity provider (RS/ES)")
    jwt_hs256_secret: SecretStr | None = Field(None, description="shared HS256 secret")
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_algorithms: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["RS256", "ES256"], description="accepted with JWT_JWKS_URL"
    )
    jwt_leeway_s: float = Field(30.0, ge=0, le=300, description="clock skew allowed on exp/nbf")
    jwt_tenant_claim: str = Field("tenant", description="claim (dotted path) naming the tenant")
    jwt_scope_claim: str = Field("scope", description="space-separated string or list")
    jwt_scope_prefix: str = Field("", description='e.g. "eventsearch:" for eventsearch:search')
    jwt_jwks_cache_s: float = Field(300.0, gt=0, description="JWKS refreshed after this")
    jwt_jwks_min_refresh_s: float = Field(
        10.0, ge=0, description="least time between fetches (unknown kid, fetch failure)"
    )
    jwt_jwks_timeout_s: float = Field(5.0, gt=0, le=60)

    @field_validator("jwt_algorithms", mode="before")
    @classmethod
    def _algorithms(cls, value: object) -> object:
        names = value
        if isinstance(value, str):
            names = [v.strip() for v in value.split(",") if v.strip()]
        allowed = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
        if isinstance(names, list) and (not names or not set(names) <= allowed):
            # HS* with a JWKS would let a public key serve as an HMAC secret; none is no check.
            raise ValueError(f"must be among {', '.join(sorted(allowed))}")
        return names

    @model_validator(mode="after")
    def _jwt_complete(self) -> Settings:
        if self.jwt_jwks_url and not (self.jwt_issuer and self.jwt_audience):
            # Without both, any token the provider issues for any other application would do.
            raise ValueError("JWT_JWKS_URL needs JWT_ISSUER and JWT_AUDIENCE")
        secret = self.jwt_hs256_secret
        if secret is not None and len(secret.get_secret_value().encode()) < 32:
            raise ValueError("JWT_HS256_SECRET must be at least 32 bytes (RFC 7518, 3.2)")
        return self

    # Subjects and CloudEvents (issue 15, docs/subjects.md).
    subject_delete_types: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["*.deleted"],
        description="comma-separated event type patterns (fnmatch) that delete their subject",
    )
    cloudevents_text_field: str = Field(
        "text", min_length=1, description="the field of a CloudEvent's object data that is the text"
    )

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

    @field_validator(
        "rate_limit_ingest",
        "rate_limit_search",
        "rate_limit_read",
        "rate_limit_admin",
        "auth_failure_limit",
    )
    @classmethod
    def _rate_limit(cls, value: str, info: ValidationInfo) -> str:
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError:
            example = "30/minute" if info.field_name == "auth_failure_limit" else "1000/minute"
            raise ValueError(f"must look like {example}") from None
        return value

    @field_validator("cors_origins", "subject_delete_types", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @model_validator(mode="after")
    def _no_placeholder_secrets(self) -> Settings:
        # A copied example secret is an open door: refuse it where it matters.
        if self.environment in ("development", "test"):
            return self
        password = unquote(urlsplit(self.database_url).password or "")
        if password.lower() in PLACEHOLDER_SECRETS:
            raise ValueError(
                "DATABASE_URL has a placeholder password; "
                f"set a real one (ENVIRONMENT={self.environment})"
            )
        flower = self.flower_password.get_secret_value() if self.flower_password else None
        if flower is not None and (flower.lower() in PLACEHOLDER_SECRETS or len(flower) < 8):
            raise ValueError(
                "FLOWER_PASSWORD is a placeholder or shorter than 8 characters; "
                f"set a real one (ENVIRONMENT={self.environment})"
            )
        return self

    @model_validator(mode="after")
    def _flower_login_fits_basic_auth(self) -> Settings:
        # Flower reads FLOWER_BASIC_AUTH as comma-separated user:password pairs (the Procfile
        # and compose build it from these two): a comma would make two logins of one.
        password = self.flower_password.get_secret_value() if self.flower_password else ""
        if "," in password or "," in self.flower_user or ":" in self.flower_user:
            raise ValueError("FLOWER_USER may not hold ',' or ':', nor FLOWER_PASSWORD ','")
        return self

    @model_validator(mode="after")
    def _reliability_order(self) -> Settings:
        # An unacked message is handed to another worker after the visibility timeout, and
        # the sweeper re-publishes a queued event after SWEEP_AFTER_S: both must wait longer
        # than a batch may run, or a batch still running would be started a second time.
        if self.broker_visibility_timeout_s <= 2 * self.task_time_limit_s:
            # A message may wait for the batch in front of it, then run in its own.
            raise ValueError("BROKER_VISIBILITY_TIMEOUT_S must exceed twice TASK_TIME_LIMIT_S")
        if self.sweep_after_s <= self.task_time_limit_s:
            raise ValueError("SWEEP_AFTER_S must exceed TASK_TIME_LIMIT_S")
        return self

    @model_validator(mode="before")
    @classmethod
    def _chunk_defaults(cls, data: Any) -> Any:
        # The chunking defaults depend on the embedder (see the fields), so they are filled in
        # before validation, from the values as given (strings from the environment).
        if not isinstance(data, dict):
            return data
        given = {k: v for k, v in data.items() if v is not None}
        local = given.get("embedder", "local") == "local"
        chunk = given.setdefault(
            "chunk_tokens", LOCAL_CHUNK_TOKENS if local else SERVER_CHUNK_TOKENS
        )
        if "chunk_overlap_tokens" not in given and str(chunk).strip().isdigit():
            given["chunk_overlap_tokens"] = int(chunk) // 8
        if local:
            given.setdefault("chunk_whole_tokens", LOCAL_CONTEXT_TOKENS)
        return {**data, **given}

    @model_validator(mode="after")
    def _chunk_overlap(self) -> Settings:
        if self.chunk_overlap_tokens * 2 > self.chunk_tokens:
            raise ValueError("CHUNK_OVERLAP_TOKENS must be at most half of CHUNK_TOKENS")
        if self.chunk_whole_tokens is not None and self.chunk_whole_tokens < self.chunk_tokens:
            raise ValueError("CHUNK_WHOLE_TOKENS must be at least CHUNK_TOKENS")
        return self

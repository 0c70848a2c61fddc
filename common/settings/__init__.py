"""The service's settings: read once from the environment, viewed by concern.

:mod:`common.settings.environment` holds the flat class that reads the environment (one
field per variable), :mod:`common.settings.loading` the entry points' loaders, and
:mod:`common.settings.groups` the frozen views by concern (``settings.search``,
``settings.embedding``, ...) that code takes.
"""

from common.settings.environment import PLACEHOLDER_SECRETS, Settings
from common.settings.groups import (
    DEFAULT_CONTEXT_TOKENS,
    DEFAULT_MODELS,
    GROUPS,
    LOCAL_CONTEXT_TOKENS,
    AuthSettings,
    ChunkingSettings,
    EmbedderName,
    EmbeddingSettings,
    FusionName,
    HttpSettings,
    IngestSettings,
    LocalRuntimeName,
    ObservabilitySettings,
    QueueSettings,
    SearchModeName,
    SearchSettings,
    StoresSettings,
)
from common.settings.loading import describe_error, get_settings, load_or_exit

__all__ = [
    "DEFAULT_CONTEXT_TOKENS",
    "DEFAULT_MODELS",
    "GROUPS",
    "LOCAL_CONTEXT_TOKENS",
    "PLACEHOLDER_SECRETS",
    "AuthSettings",
    "ChunkingSettings",
    "EmbedderName",
    "EmbeddingSettings",
    "FusionName",
    "HttpSettings",
    "IngestSettings",
    "LocalRuntimeName",
    "ObservabilitySettings",
    "QueueSettings",
    "SearchModeName",
    "SearchSettings",
    "Settings",
    "StoresSettings",
    "describe_error",
    "get_settings",
    "load_or_exit",
]

"""Loading the settings at a process's entry point: once, and a bad environment as one line.

A wrong or missing setting must fail at start with one clear line, never at the first
request: processes call :func:`get_settings` at import/start-up, and :func:`load_or_exit`
turns a validation error into a single line on stderr and exit status 2.
"""

from __future__ import annotations

import sys
from functools import lru_cache

from pydantic import ValidationError

from common.settings.environment import Settings


def describe_error(error: ValidationError) -> str:
    """One line naming every bad setting by its environment variable."""
    parts = []
    for item in error.errors():
        name = "_".join(str(p) for p in item["loc"]).upper()
        message = "is required" if item["type"] == "missing" else item["msg"]
        message = message.removeprefix("Value error, ")
        # A whole-object check (placeholder secrets) names its variables in its message.
        parts.append(f"{name} {message}" if name else message)
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

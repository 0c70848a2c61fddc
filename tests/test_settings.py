"""A wrong or missing setting fails at start with one clear line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

BASE = {"DATABASE_URL": "postgresql://u@127.0.0.1:1/db", "REDIS_URL": "redis://127.0.0.1:1/0"}


# What each process runs when it starts: the gateway reads its settings when its app module
# is imported; a worker imports cleanly and starts up in workers.app.start_up (the
# import_modules signal; tests/test_imports.py runs the real `celery worker`).
STARTS = {
    "gateway.app": "import gateway.app",
    "workers.app": "import workers.app as w; w.start_up()",
}


def start(module: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in BASE and k not in env}
    return subprocess.run(
        [sys.executable, "-c", STARTS[module]],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("module", ["gateway.app", "workers.app"])
@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({**BASE, "EMBEDDER": "telepathy"}, ["EMBEDDER"]),
        ({**BASE, "EMBED_BATCH_SIZE": "zero"}, ["EMBED_BATCH_SIZE"]),
        ({"REDIS_URL": "redis://x"}, ["DATABASE_URL", "is required"]),
        ({**BASE, "DATABASE_URL": "mysql://u@h/db"}, ["DATABASE_URL", "postgresql://"]),
    ],
)
def test_bad_setting_fails_at_start_with_one_line(
    module: str, env: dict[str, str], names: list[str]
) -> None:
    result = start(module, **env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("eventsearch: invalid configuration:")
    for name in names:
        assert name in lines[0]


def test_good_settings_import_cleanly() -> None:
    result = start("gateway.app", **BASE, EMBEDDER="ollama")
    assert result.returncode == 0, result.stderr


PROD = {**BASE, "ENVIRONMENT": "production", "EMBEDDER": "ollama"}


def settings_error(**env: str) -> str | None:
    """The one-line message the processes would print, or None when the settings are good
    (in-process: the subprocess tests above prove the line reaches stderr and exit 2)."""
    from pydantic import ValidationError

    from common.settings import Settings, describe_error

    try:
        Settings(**{k.lower(): v for k, v in env.items()})  # type: ignore[arg-type]
    except ValidationError as error:
        return describe_error(error)
    return None


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({**PROD, "DATABASE_URL": "postgresql://app:changeme@db:5432/app"}, "DATABASE_URL"),
        ({**PROD, "DATABASE_URL": "postgresql://postgres:postgres@db/app"}, "DATABASE_URL"),
        ({**PROD, "DATABASE_URL": "postgresql://app:Password@db/app"}, "DATABASE_URL"),
        ({**PROD, "FLOWER_PASSWORD": "changeme"}, "FLOWER_PASSWORD"),
        ({**PROD, "FLOWER_PASSWORD": "admin"}, "FLOWER_PASSWORD"),
        ({**PROD, "FLOWER_PASSWORD": "short"}, "FLOWER_PASSWORD"),
    ],
    ids=["db-changeme", "db-postgres", "db-password", "flower-changeme", "flower-admin", "short"],
)
def test_placeholder_secret_is_refused_outside_development(env: dict[str, str], name: str) -> None:
    line = settings_error(**env)
    assert line is not None
    assert line.startswith("eventsearch: invalid configuration:")
    assert name in line and "placeholder" in line
    assert "changeme" not in line  # the message names the variable, not the secret


@pytest.mark.parametrize("module", ["gateway.app", "workers.app"])
def test_process_with_placeholder_secret_exits_with_one_line(module: str) -> None:
    result = start(module, **PROD, FLOWER_PASSWORD="changeme")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "FLOWER_PASSWORD" in lines[0], result.stderr


@pytest.mark.parametrize("environment", ["development", "test"])
def test_placeholder_secret_is_allowed_in_development(environment: str) -> None:
    env = {
        **PROD,
        "ENVIRONMENT": environment,
        "DATABASE_URL": "postgresql://postgres:postgres@127.0.0.1:1/db",
        "FLOWER_PASSWORD": "changeme",
    }
    assert settings_error(**env) is None


def test_real_secrets_are_accepted_in_production() -> None:
    env = {
        **PROD,
        "DATABASE_URL": "postgresql://app:kq3N8v_Zr2pL@127.0.0.1:1/db",
        "FLOWER_PASSWORD": "Xy7-long-generated-password",
    }
    assert settings_error(**env) is None


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({**BASE, "RATE_LIMIT_INGEST": "lots"}, "RATE_LIMIT_INGEST"),
        ({**BASE, "RATE_LIMIT_SEARCH": "10 per fortnight"}, "RATE_LIMIT_SEARCH"),
        ({**BASE, "MAX_BODY_BYTES": "12"}, "MAX_BODY_BYTES"),
        ({**BASE, "LOG_FORMAT": "xml"}, "LOG_FORMAT"),
    ],
)
def test_bad_operations_setting_fails_at_start(env: dict[str, str], name: str) -> None:
    line = settings_error(**env)
    assert line is not None and name in line


def test_cors_origins_are_comma_separated() -> None:
    from common.settings import Settings

    settings = Settings(
        database_url=BASE["DATABASE_URL"],
        redis_url=BASE["REDIS_URL"],
        cors_origins="https://a.example, https://b.example",  # type: ignore[arg-type]
    )
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    default = Settings(database_url=BASE["DATABASE_URL"], redis_url=BASE["REDIS_URL"])
    assert default.cors_origins == []


@pytest.mark.parametrize(
    "env",
    [
        {**BASE, "FLOWER_PASSWORD": "long,but-two-logins"},
        {**BASE, "FLOWER_USER": "ad:min"},
        {**BASE, "FLOWER_USER": "a,b"},
    ],
    ids=["comma-in-password", "colon-in-user", "comma-in-user"],
)
def test_a_flower_login_that_basic_auth_would_split_is_refused(env: dict[str, str]) -> None:
    # Flower reads FLOWER_BASIC_AUTH as comma-separated user:password pairs.
    line = settings_error(**env)
    assert line is not None and "FLOWER_" in line

"""A wrong or missing setting fails at start with one clear line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

BASE = {"DATABASE_URL": "postgresql://u@127.0.0.1:1/db", "REDIS_URL": "redis://127.0.0.1:1/0"}


def start(module: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in BASE and k not in env}
    return subprocess.run(
        [sys.executable, "-c", f"import {module}"],
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

"""Task modules import alone, with no environment and no side effect (issue 13, point 3):
no setting read, no database reached, no metrics directory made. Everything a worker must
do before it runs tasks happens when it starts (workers.app.start_up)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import BIN

MODULES = ["workers.embed", "workers.reembed", "workers.sweeper", "workers.app"]


@pytest.mark.parametrize("module", MODULES)
def test_a_worker_module_imports_in_an_empty_environment(module: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        env={"TMPDIR": str(tmp_path)},  # nothing else: no DATABASE_URL, no REDIS_URL, no PATH
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert list(tmp_path.iterdir()) == []  # no metrics directory made


def test_the_worker_command_reads_its_settings_when_it_starts(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BIN / "celery"), "-A", "workers.app", "worker", "--pool=solo"],
        env={
            "TMPDIR": str(tmp_path),
            "DATABASE_URL": "postgresql://u@127.0.0.1:1/db",
            "REDIS_URL": "redis://127.0.0.1:1/0",
            "EMBEDDER": "telepathy",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("eventsearch: invalid configuration:") and "EMBEDDER" in line


def test_the_worker_command_checks_the_dimension_when_it_starts(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**stack_env, "EMBED_DIM": "768", "EMBED_MODEL": "nomic-embed-text"}
    result = subprocess.run(
        [str(BIN / "celery"), "-A", "workers.app", "worker", "--pool=solo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "EMBED_DIM=768" in result.stderr.strip().splitlines()[-1]

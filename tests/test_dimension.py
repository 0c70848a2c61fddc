"""A model whose dimension does not fit the vector column is refused at start, in one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from common.dimension import column_dimension
from tests.conftest import DIM
from tests.test_settings import STARTS


def start(module: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", STARTS[module]],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_column_reports_its_dimension(stack_env: dict[str, str]) -> None:
    assert column_dimension(stack_env["DATABASE_URL"]) == DIM


@pytest.mark.parametrize("module", ["gateway.app", "workers.app"])
def test_model_of_another_dimension_is_refused_at_start(
    stack_env: dict[str, str], module: str
) -> None:
    result = start(module, {**stack_env, "EMBED_DIM": "768", "EMBED_MODEL": "nomic-embed-text"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "EMBED_DIM=768" in lines[0] and "384" in lines[0] and "nomic-embed-text" in lines[0]


def test_matching_dimension_starts(stack_env: dict[str, str]) -> None:
    result = start("gateway.app", stack_env)
    assert result.returncode == 0, result.stderr

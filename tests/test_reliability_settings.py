"""The reliability settings keep their order, or the process does not start."""

from __future__ import annotations

import pytest

from tests.test_settings import BASE, start


@pytest.mark.parametrize("module", ["gateway.app", "workers.app"])
@pytest.mark.parametrize(
    ("env", "name"),
    [
        (
            {
                "TASK_TIME_LIMIT_S": "100",
                "BROKER_VISIBILITY_TIMEOUT_S": "150",
                "SWEEP_AFTER_S": "600",
            },
            "BROKER_VISIBILITY_TIMEOUT_S must exceed twice TASK_TIME_LIMIT_S",
        ),
        (
            {
                "TASK_TIME_LIMIT_S": "100",
                "SWEEP_AFTER_S": "100",
                "BROKER_VISIBILITY_TIMEOUT_S": "3600",
            },
            "SWEEP_AFTER_S must exceed TASK_TIME_LIMIT_S",
        ),
        ({"SWEEP_INTERVAL_S": "0"}, "SWEEP_INTERVAL_S"),
    ],
)
def test_visibility_timeout_and_sweep_delay_shorter_than_a_batch_are_refused_at_start(
    module: str, env: dict[str, str], name: str
) -> None:
    # Every timing is given: the test session's own environment holds scaled-down ones.
    result = start(module, **BASE, **env)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("eventsearch: invalid configuration:") and name in line

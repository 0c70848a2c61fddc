"""workers/reliable_batches.py replaces celery-batches' ``flush`` and relies on its internals;
this fails when the installed version, or any internal it uses, is not what it was written
against (issue 13, point 5). Upgrading celery-batches means reading its flush again."""

from __future__ import annotations

import inspect
from importlib.metadata import version
from pathlib import Path

import celery_batches
from celery_batches import Batches, SimpleRequest
from celery_batches.trace import apply_batches_task

from workers.reliable_batches import ReliableBatches

ROOT = Path(__file__).resolve().parent.parent
PINNED = "0.11"


def test_the_installed_celery_batches_is_the_pinned_one() -> None:
    assert version("celery-batches") == PINNED
    assert f"celery-batches=={PINNED}" in (ROOT / "constraints.txt").read_text()
    assert f'"celery-batches=={PINNED}"' in (ROOT / "pyproject.toml").read_text()


def test_the_internals_reliable_batches_uses_are_unchanged() -> None:
    strategy = inspect.getsource(Batches.Strategy)
    assert "self._pool = consumer.pool" in strategy  # the pool _apply submits to
    assert "self.flush_interval" in strategy and "self.flush_every" in strategy  # read late
    assert "flush_buffer = self._do_flush" in strategy
    assert "self.flush(ready_requests)" in inspect.getsource(Batches._do_flush)
    assert list(inspect.signature(Batches.flush).parameters) == ["self", "requests"]
    assert list(inspect.signature(apply_batches_task).parameters) == [
        "task",
        "args",
        "loglevel",
        "logfile",
    ]
    assert callable(SimpleRequest.from_request)
    # The flush it replaces still submits the same job (so the override keeps its meaning).
    original = inspect.getsource(Batches.flush)
    assert "self._pool.apply_async(" in original and "apply_batches_task," in original
    assert "(self, serializable_requests, 0, None)" in original


def test_the_override_is_in_place() -> None:
    assert ReliableBatches.flush is not Batches.flush
    assert celery_batches.Batches is Batches

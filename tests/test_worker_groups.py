"""A pool job carries at most a worker batch of events, whatever the messages hold."""

from __future__ import annotations

from types import SimpleNamespace

import pytest


@pytest.mark.usefixtures("stack_env")  # importing the worker reads its settings
def test_buffered_messages_are_grouped_by_event_count_not_message_count() -> None:
    import workers.app  # noqa: F401 (first, as a worker does: the task modules import it)
    from workers.embed import groups

    singles = [SimpleNamespace(args=[f"e{i}"]) for i in range(5)]
    chunk = SimpleNamespace(args=[f"c{i}" for i in range(3)])
    big = SimpleNamespace(args=[f"b{i}" for i in range(9)])
    grouped = groups([*singles, chunk, big, singles[0]], size=4)
    sizes = [sum(len(r.args) for r in g) for g in grouped]
    assert sizes == [4, 1 + 3, 9, 1]  # a message over the size is a group of its own
    assert [r for g in grouped for r in g] == [*singles, chunk, big, singles[0]]  # order kept

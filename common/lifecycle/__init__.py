"""An event's lifecycle: every write to the ``events`` table, by name
(:mod:`common.lifecycle.transitions`), and :func:`apply` to run one in a transaction of its
own.

Nothing outside this package writes ``events`` (tests/test_lifecycle_owner.py greps for
it). The state diagram is in docs/architecture.md ("An event's lifecycle").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy.orm import Session

P = ParamSpec("P")
R = TypeVar("R")


def apply(transition: Callable[Concatenate[Session, P], R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run ``transition`` in a transaction of its own on a sync session, committed when it
    returns: the worker's unit of work (no connection is held while the embedder works)."""
    from common.db import sync_sessions

    with sync_sessions()() as session, session.begin():
        return transition(session, *args, **kwargs)

"""The SQL of replaying dead letters, shared by the gateway (async) and the CLI (sync).

Replaying marks the letters replayed (they stay as history) and puts their events back to
``queued`` with the attempts reset; only a still-``failed`` event is queued again, so a
deleted one stays deleted. The caller commits, then publishes the returned event ids.
"""

from __future__ import annotations

MARK_REPLAYED = "UPDATE dead_letters SET replayed_at = now() WHERE id = ANY(:ids)"
# due_at: the sweeper's deadline for this new hand-off (NULL would mean created_at + the
# delay, long past for an old event, and the sweeper would publish it a second time).
REQUEUE_EVENTS = (
    "UPDATE events SET status = 'queued', attempts = 0, error = NULL, updated_at = now(),"
    " due_at = now() + make_interval(secs => :after)"
    " WHERE id = ANY(:ids) AND status = 'failed' RETURNING id"
)

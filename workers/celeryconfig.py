"""Every Celery setting of the worker, chosen on purpose, in one place."""

from __future__ import annotations

from common.queue import QUEUE_EMBED
from common.settings import load_or_exit

_settings = load_or_exit()

broker_url = _settings.redis_url
broker_connection_retry_on_startup = True  # wait for Redis at start instead of exiting
# Redis does not know "in progress": a message taken but not acked sits in the unacked set
# and is given to another worker after visibility_timeout. It must exceed the longest batch
# (embedder timeout x attempts inside one batch); the restore sweep runs every second so a
# killed worker's messages come back within seconds of the timeout, not minutes.
broker_transport_options = {
    "visibility_timeout": 600,
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}

task_serializer = "json"
accept_content = ["json"]
task_default_queue = QUEUE_EMBED
task_ignore_result = True  # status lives in the events table, not in a result backend

# At-least-once: ack only after the batch is stored; a worker killed mid-batch gives its
# messages back. The effect stays exactly-once because the store is an idempotent upsert.
task_acks_late = True
task_reject_on_worker_lost = True

# The batch task buffers messages in the consumer until a batch is full (celery-batches):
# the prefetch window must hold a whole batch, or batches never fill.
worker_prefetch_multiplier = _settings.embed_batch_size
worker_concurrency = _settings.worker_concurrency

# Flower shows tasks only when workers send task events.
worker_send_task_events = True
task_send_sent_event = True

worker_hijack_root_logger = False

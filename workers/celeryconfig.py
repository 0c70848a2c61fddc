"""Every Celery setting of the worker, chosen on purpose, in one place."""

from __future__ import annotations

from common.queue import QUEUE_EMBED
from common.settings import load_or_exit

_settings = load_or_exit()

broker_url = _settings.redis_url
broker_connection_retry_on_startup = True  # wait for Redis at start instead of exiting
broker_connection_retry = True  # and reconnect (forever) when it restarts later
broker_connection_max_retries = None
# Redis does not know "in progress": a message taken but not acked sits in the unacked set
# and is given to another worker after visibility_timeout. It must exceed the longest time a
# message may wait unacked in a live worker: one batch in front of it in the prefetch window
# plus its own (each capped by task_time_limit; the settings refuse a shorter timeout). The restore
# sweep runs every second, so a killed worker's messages come back within seconds of the
# timeout, not minutes; the sweeper (workers/sweeper.py) usually brings them back sooner.
broker_transport_options = {
    "visibility_timeout": _settings.broker_visibility_timeout_s,
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}

task_serializer = "json"
accept_content = ["json"]
task_default_queue = QUEUE_EMBED
task_ignore_result = True  # status lives in the events table, not in a result backend
task_store_errors_even_if_ignored = False

# At-least-once: ack only after the batch is stored; a worker killed mid-batch gives its
# messages back. The effect stays exactly-once because every write is conditional on the
# event still being queued (common/lifecycle/transitions.py). celery-batches runs the batch
# as one pool job, so the reject-on-lost-child behaviour is in workers/reliable_batches.py.
task_acks_late = True
task_reject_on_worker_lost = True
task_acks_on_failure_or_timeout = True  # a failed batch is retried through the database

# "Prefetch 1", counted in batches: the batch task buffers messages in the consumer until a
# batch is full (celery-batches), so the window must hold a batch per pool process, or
# batches never fill. It holds two: the one running and the next one filling, or each batch
# would wait for the previous one's ack before its messages are even fetched (measured:
# half the throughput). Any more and a worker hoards messages others could take.
worker_prefetch_multiplier = 2 * _settings.embed_batch_size
worker_concurrency = _settings.worker_concurrency

# Time limits of one batch. The soft one raises inside the task, which schedules a retry of
# its events; the hard one kills the child (its messages are acked; the events are retried
# by the sweeper). Ten seconds between them let the soft handler write to the database.
task_time_limit = _settings.task_time_limit_s
task_soft_time_limit = max(_settings.task_time_limit_s - 10, _settings.task_time_limit_s * 0.8)

# Warm shutdown (SIGTERM): the worker stops consuming, lets the running batch finish (and
# ack), and closes its broker channel, which gives back every message still buffered or
# prefetched (kombu restores a closing channel's unacked messages). Docker's default 10 s
# grace is too short for a batch: compose.yaml gives the worker stop_grace_period: 60s.
worker_cancel_long_running_tasks_on_connection_loss = False

# The worker's database pool is sized to one batch at a time per child (common/db.py).

# Flower shows tasks only when workers send task events.
worker_send_task_events = True
task_send_sent_event = True

worker_hijack_root_logger = False

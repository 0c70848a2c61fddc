"""The Celery app: ``celery -A workers.app worker`` and ``celery -A workers.app flower``.

Importing this module (or a task module) reads no setting and touches nothing: the task
modules are ``shared_task``s listed in ``include=``, imported by the worker itself, and
everything with a side effect runs in :func:`start_up`, connected to Celery's
``import_modules`` signal, which a worker (and Flower) sends just before it imports them.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import import_modules

from workers.sweeper import Sweeper

TASK_MODULES = ["workers.embed", "workers.reembed"]

app = Celery("eventsearch", include=TASK_MODULES)
app.config_from_object("workers.celeryconfig")  # read when first used, at start-up
app.steps["worker"].add(Sweeper)


def start_up() -> None:
    """What a worker does before its task modules load: a bad environment, or a model that
    does not fit the vector column, stops it here with one line (exit 2); then the metrics
    directory (before anything creates a metric) and the logs."""
    from common.dimension import check_or_exit
    from common.logs import configure as configure_logs
    from common.settings import load_or_exit
    from workers import context, observability

    settings = load_or_exit()
    check_or_exit(settings)
    context.use(settings)  # what the task code reads (workers/context.py)
    observability.prepare()
    configure_logs(settings.log_level, settings.log_format)


@import_modules.connect
def _on_import_modules(sender: Any = None, **_: Any) -> None:
    if sender is app:
        start_up()

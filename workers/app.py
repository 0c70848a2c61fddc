"""The Celery app: ``celery -A workers.app worker`` and ``celery -A workers.app flower``."""

from __future__ import annotations

from celery import Celery

from common.settings import load_or_exit

load_or_exit()  # a bad environment stops the worker here, with one line
app = Celery("eventsearch")
app.config_from_object("workers.celeryconfig")

# Registers the tasks; imported after `app` exists because the task module decorates with it.
import workers.embed  # noqa: E402,F401

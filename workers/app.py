"""The Celery app: ``celery -A workers.app worker`` and ``celery -A workers.app flower``."""

from __future__ import annotations

from celery import Celery

from common.dimension import check_or_exit
from common.logs import configure as configure_logs
from common.settings import load_or_exit
from workers import observability

# A bad environment, or a model that does not fit the vector column, stops the worker here.
_settings = load_or_exit()
check_or_exit(_settings)
observability.prepare()  # before the task module imports the metrics
configure_logs(_settings.log_level, _settings.log_format)
app = Celery("eventsearch")
app.config_from_object("workers.celeryconfig")

# Registers the tasks; imported after `app` exists because the task module decorates with it.
import workers.embed  # noqa: E402
import workers.reembed  # noqa: E402,F401
from workers.sweeper import Sweeper  # noqa: E402

app.steps["worker"].add(Sweeper)

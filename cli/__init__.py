"""The ``eventsearch`` command."""

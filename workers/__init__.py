"""Celery workers: embed queued events in batches and upsert the vectors into pgvector."""

"""The FastAPI gateway: ingest, status, search, health."""

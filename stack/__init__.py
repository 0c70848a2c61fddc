"""The embedded stack: PostgreSQL+pgvector and Redis from pip wheels, for `make up` and tests."""

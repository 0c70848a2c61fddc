"""Search: dense (HNSW k-NN), keyword (PostgreSQL full-text) and hybrid (reciprocal rank
fusion of both), every mode restricted by the same filters inside the query."""

from gateway.search.endpoints import router

__all__ = ["router"]

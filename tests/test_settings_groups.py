"""The views by concern cover the flat settings exactly (issue 13, point 6): every field of
the flat class in one view, every view's field on the flat class with the same value."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from common.settings import GROUPS, Settings

ENV = {
    "database_url": "postgresql://u:p@127.0.0.1:1/db",
    "redis_url": "redis://127.0.0.1:1/0",
    "embedder": "ollama",
    # Given, so that what the test session put in the environment does not count.
    "embed_model": None,
    "embed_context_tokens": None,
    "rrf_k": 7,
    "cors_origins": "https://a.example",
    "jwt_hs256_secret": "x" * 32,
}


def settings() -> Settings:
    return Settings(**ENV)  # type: ignore[arg-type]


def view_fields() -> Counter[str]:
    return Counter(f.name for view in GROUPS.values() for f in dataclasses.fields(view))


def test_every_setting_is_in_exactly_one_view() -> None:
    counts = view_fields()
    assert set(counts) == set(Settings.model_fields)
    assert [name for name, n in counts.items() if n != 1] == []


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_a_view_has_the_flat_values(group: str) -> None:
    flat = settings()
    view = getattr(flat, group)
    assert type(view) is GROUPS[group]
    for field in dataclasses.fields(view):
        assert getattr(view, field.name) == getattr(flat, field.name), field.name


def test_views_are_frozen_and_hold_only_their_fields() -> None:
    search = settings().search
    assert search.rrf_k == 7
    with pytest.raises(dataclasses.FrozenInstanceError):
        search.rrf_k = 8  # type: ignore[misc]
    with pytest.raises(AttributeError):
        search.database_url  # type: ignore[attr-defined]  # noqa: B018


def test_a_copy_with_changes_has_views_of_its_own_values() -> None:
    flat = settings()
    assert flat.search.rrf_k == 7
    copy = flat.model_copy(update={"rrf_k": 9})
    assert (copy.search.rrf_k, flat.search.rrf_k) == (9, 7)


def test_derived_values_read_the_same_through_the_flat_class() -> None:
    flat = settings()
    assert flat.model_name == flat.embedding.model_name == "nomic-embed-text"
    assert flat.context_tokens == flat.embedding.context_tokens == 2048
    assert flat.jwt_enabled is flat.auth.jwt_enabled is True
    assert flat.sqlalchemy_url == flat.stores.sqlalchemy_url
    assert flat.sqlalchemy_url.startswith("postgresql+psycopg://")

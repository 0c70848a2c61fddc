"""Keyword search by best chunk, on the real stack: an embedded long event scores what its
best chunk scores, its passage comes from that chunk, and web-search syntax still holds for
the whole event; an event not yet embedded is one unit, its whole text."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.conftest import make_key, status_of, wait_for
from tests.processes import Proc
from tests.reliability_helpers import insert_queued
from tests.test_chunks import CHUNKER, DUTIES, ingest

FILLER = " ".join(DUTIES)


def long_text(paragraphs: dict[int, str], count: int = 12) -> str:
    """``count`` paragraphs of the same filler, with ``paragraphs[i]`` added to the i-th."""
    return "\n\n".join(
        f"Paragraph {i}. {FILLER} {paragraphs.get(i, '')}".strip() for i in range(count)
    )


def keyword(client: httpx.Client, query: str, **body: object) -> list[dict[str, object]]:
    response = client.post(
        "/api/v1/search", json={"query": query, "mode": "keyword", "top_k": 10, **body}
    )
    assert response.status_code == 200, response.text
    return list(response.json()["results"])


def test_a_long_event_scores_its_best_chunk_and_its_passage_is_in_that_chunk(
    client: httpx.Client, worker: Proc, db: Engine
) -> None:
    first, second = (f"qz{uuid.uuid4().hex[:10]}" for _ in range(2))
    # Scattered: each word twice, in chunks far apart. Whole-event BM25 ranks it first (more
    # occurrences, the same length); by best chunk it holds one word only.
    scattered = long_text({1: f"{first} {first}", 10: f"{second} {second}"})
    # Together: each word once, in one paragraph, so in one chunk.
    together = long_text({6: f"{first} {second}"})
    assert len(CHUNKER.split(scattered)) > 5 and len(CHUNKER.split(together)) > 5
    ids = {"scattered": ingest(client, scattered), "together": ingest(client, together)}
    wait_for(
        lambda: all(status_of(client, i)["status"] == "embedded" for i in ids.values()),
        what="embedded",
    )
    hits = keyword(client, f"{first} {second}")
    assert [h["id"] for h in hits] == [ids["together"], ids["scattered"]]
    top, runner_up = hits
    assert top["rankings"] == {"keyword": 1}
    passage = top["passage"]
    assert isinstance(passage, dict)
    assert together[passage["start"] : passage["end"]] == passage["text"]
    assert first in passage["text"] and second in passage["text"]
    # Inside the chunk that holds the words (one of the chunks, with the overlap).
    holders = [c for c in CHUNKER.split(together) if first in c.text and second in c.text]
    assert any(c.start <= passage["start"] and passage["end"] <= c.end for c in holders)
    passage = runner_up["passage"]
    assert isinstance(passage, dict)
    assert scattered[passage["start"] : passage["end"]] == passage["text"]
    assert first in passage["text"] or second in passage["text"]


def test_web_search_syntax_holds_for_the_whole_event_not_one_chunk(
    client: httpx.Client, worker: Proc
) -> None:
    kept, dropped = (f"qz{uuid.uuid4().hex[:10]}" for _ in range(2))
    # The excluded word is in another chunk than the wanted one.
    excluded = ingest(client, long_text({1: kept, 10: dropped}))
    plain = ingest(client, long_text({1: kept}))
    phrase = ingest(client, long_text({4: f"{kept} {dropped}"}))
    wait_for(
        lambda: all(
            status_of(client, i)["status"] == "embedded" for i in (excluded, plain, phrase)
        ),
        what="embedded",
    )
    assert {h["id"] for h in keyword(client, f"{kept} -{dropped}")} == {plain}
    # A quoted phrase is found where its words stand together, whichever chunk holds them.
    assert [h["id"] for h in keyword(client, f'"{kept} {dropped}"')] == [phrase]
    assert {h["id"] for h in keyword(client, f"{kept} or {dropped}")} == {excluded, plain, phrase}


def test_an_event_not_embedded_yet_is_ranked_by_its_whole_text(
    client: httpx.Client, db: Engine
) -> None:
    word = f"qz{uuid.uuid4().hex[:10]}"
    body = long_text({11: word})
    [event_id] = insert_queued(db, [body])  # the tenant of ``client``
    with db.connect() as conn:
        assert (
            conn.execute(
                text("SELECT count(*) FROM chunks WHERE event_id = :id"), {"id": event_id}
            ).scalar_one()
            == 0
        )
    [hit] = keyword(client, word)
    assert hit["id"] == event_id and hit["rankings"] == {"keyword": 1}
    passage = hit["passage"]
    assert isinstance(passage, dict)
    assert body[passage["start"] : passage["end"]] == passage["text"] and word in passage["text"]


def test_units_arriving_after_n_was_counted_still_score_positive_and_in_order(
    gateway: Proc, db: Engine
) -> None:
    """BM25's N is counted at most once per SCOPE_TTL_S (gateway/search/keyword.py): events
    that arrive after it was counted hold the word more often than N says there are units.
    The IDF then takes N as at least the word's document frequency, so every hit still
    scores above zero and more of the word still ranks higher (a stale N below df gave
    negative scores, and the order upside down)."""
    tenant = f"kw-scope-{uuid.uuid4().hex[:8]}"
    word = f"qz{uuid.uuid4().hex[:10]}"
    with httpx.Client(
        base_url=gateway.url, headers={"X-API-Key": make_key(db, tenant)}, timeout=30
    ) as client:
        insert_queued(db, [f"{word} alone among other words here"], tenant=tenant)
        assert len(keyword(client, word)) == 1  # N counted: one unit
        often = insert_queued(db, [f"{word} {word} {word} here and there"] * 2, tenant=tenant)
        once = insert_queued(db, [f"{word} once, and other words here"] * 2, tenant=tenant)
        hits = keyword(client, word)
    assert len(hits) == 5
    assert all(float(str(h["score"])) > 0 for h in hits)
    assert {str(h["id"]) for h in hits[:2]} == set(often)
    assert set(once) <= {str(h["id"]) for h in hits[2:]}

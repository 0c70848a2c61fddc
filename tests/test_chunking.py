"""Chunking (common/chunking.py): spans in order that cover the text, each chunk within its
token budget, neighbours overlapping, a chunk's text the slice of its span, and a text that
fits as one chunk. Properties hold for any text (hypothesis) and for long real prose."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.chunking import (
    PARAGRAPH_BREAK,
    Chunk,
    Chunker,
    char_chunker,
    paragraphs,
    token_chunker,
)
from common.embedders.tokenizer import MAX_MODEL_TOKENS, count_tokens

PROSE = (
    "The data platform team runs the nightly ingestion of every partner feed. "
    "Each feed lands in object storage, is validated against its schema, and is loaded "
    "into the warehouse before six in the morning.\n\n"
    "On call, you watch the dashboards, answer pages within fifteen minutes, and write a "
    "short incident note when a load is late. You will also mentor two junior engineers.\n\n"
)
LAST = "The one unusual duty: you will calibrate the seismograph in the basement every Friday."
LONG = PROSE * 12 + LAST


@pytest.fixture(scope="module")
def words() -> Chunker:
    return token_chunker(64, 8)


def check(text: str, chunks: list[Chunk], budget: int) -> None:
    assert chunks and [c.position for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.tokens <= budget
    starts = [c.start for c in chunks]
    ends = [c.end for c in chunks]
    assert starts == sorted(starts) and ends == sorted(ends)
    assert len(set(starts)) == len(starts)
    # Whatever no span holds is whitespace (the splitter trims it off chunk edges).
    covered = bytearray(len(text))
    for chunk in chunks:
        covered[chunk.start : chunk.end] = b"\x01" * (chunk.end - chunk.start)
    assert all(text[i].isspace() for i in range(len(text)) if not covered[i])


def test_a_text_that_fits_is_one_chunk_spanning_all_of_it(words: Chunker) -> None:
    text = "  Senior data engineer in Nairobi.\n"
    assert words.split(text) == [Chunk(0, 0, len(text), text, count_tokens(text))]


def test_blanks_longer_than_a_chunk_are_one_chunk_all_the_same() -> None:
    chunker = char_chunker(16, 4, 3.0)
    [chunk] = chunker.split(" \n" * 100)
    assert chunk.start == 0 and chunk.end == chunker.capacity and not chunk.text.strip()


def test_the_default_budget_keeps_every_text_the_model_read_whole_in_one_chunk() -> None:
    # The local default: 128-token chunks, but a text the model reads whole (256 pieces,
    # [CLS] and [SEP] included) stays one chunk, as exact search with the model embeds it.
    chunker = token_chunker(128, 16, MAX_MODEL_TOKENS)
    text = " ".join(["engineer"] * (MAX_MODEL_TOKENS - 2))
    assert count_tokens(text) == MAX_MODEL_TOKENS
    assert chunker.split(text) == [Chunk(0, 0, len(text), text, MAX_MODEL_TOKENS)]
    longer = chunker.split(text + " engineer")
    assert len(longer) == 3 and all(c.tokens <= 128 for c in longer)
    check(text + " engineer", longer, 128)
    assert chunker.name == "wp128o16w256p" and token_chunker(128, 16).name == "wp128o16p"


def test_whole_texts_for_servers_are_counted_in_characters() -> None:
    chunker = char_chunker(64, 8, 3.0, whole=128)
    assert chunker.capacity == 192 and chunker.whole == 384 and chunker.name == "ch192o24w128p"
    assert len(chunker.split("x" * 383 + ".")) == 1
    chunks = chunker.split("word " * 80)  # 399 characters once its trailing blank is trimmed
    assert len(chunks) == 3 and all(len(c.text) <= 192 for c in chunks)


def test_long_prose_is_cut_at_sentence_ends_within_the_budget(words: Chunker) -> None:
    chunks = words.split(LONG)
    check(LONG, chunks, 64)
    assert len(chunks) > 10
    assert chunks[-1].text.endswith(LAST)
    # Every chunk counted with the model's own specials fits the model's budget.
    assert all(count_tokens(c.text) <= 64 for c in chunks)
    for chunk in chunks[:-1]:
        assert chunk.text.rstrip()[-1] in ".!?", chunk.text


def test_neighbours_overlap_by_at_most_the_configured_tokens() -> None:
    # One paragraph: chunks end inside it, at sentence ends, and the next chunk starts with
    # the last sentences that fit the overlap. (Between paragraphs that each fill a chunk the
    # splitter overlaps nothing: a paragraph is read whole by one chunk.)
    paragraph = LONG.replace("\n\n", " ")
    chunks = token_chunker(64, 24).split(paragraph)
    check(paragraph, chunks, 64)
    pairs = list(itertools.pairwise(chunks))
    overlapping = [(a, b) for a, b in pairs if b.start < a.end]
    assert len(overlapping) >= len(pairs) // 2
    for a, b in overlapping:
        shared = paragraph[b.start : a.end]
        assert count_tokens(shared) - 2 <= 24
        assert a.text.endswith(shared.rstrip()) and b.text.startswith(shared.strip())
    no_overlap = token_chunker(64, 0).split(paragraph)
    assert all(b.start >= a.end for a, b in itertools.pairwise(no_overlap))
    assert len(no_overlap) < len(chunks)


def test_character_chunks_for_servers_without_a_tokenizer() -> None:
    chunker = char_chunker(64, 8, chars_per_token=3.0)
    assert chunker.capacity == 192
    chunks = chunker.split(LONG)
    check(LONG, chunks, 64)
    assert all(len(c.text) <= 192 for c in chunks)
    assert chunker.split("short") == [Chunk(0, 0, 5, "short", 2)]


texts = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=3000
) | st.lists(
    st.sampled_from(["data", "engineer", "Nairobi.", "\n\n", "seismograph", "日本語", "🙂", "—"]),
    min_size=1,
    max_size=800,
).map(" ".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts)
def test_properties_of_word_piece_chunks(text: str) -> None:
    chunker = token_chunker(48, 8)
    chunks = chunker.split(text)
    check(text, chunks, 48)
    assert all(count_tokens(c.text) <= 48 for c in chunks)


@settings(max_examples=150, deadline=None)
@given(text=texts, tokens=st.integers(16, 200))
def test_properties_of_character_chunks(text: str, tokens: int) -> None:
    chunker = char_chunker(tokens, tokens // 4, 3.0)
    chunks = chunker.split(text)
    check(text, chunks, tokens)
    assert all(len(c.text) <= chunker.capacity for c in chunks)


def test_settings_fit_the_budget_to_the_embedders_context() -> None:
    from pydantic import ValidationError

    from common.chunking import budget_tokens, chunker_for, chunking_name
    from common.settings import Settings

    base = {"database_url": "postgresql://u@h/db", "redis_url": "redis://h"}
    default = Settings(**base, embedder="local")
    assert (default.chunk_tokens, default.chunk_overlap_tokens) == (128, 16)
    assert default.chunk_whole_tokens == 256 and chunking_name(default) == "wp128o16w256p"
    assert chunker_for(default).capacity == 126 and chunker_for(default).whole == 254
    local = Settings(**base, embedder="local", chunk_tokens=1000, chunk_whole_tokens=1000)
    assert local.context_tokens == 256 and budget_tokens(local) == 256
    assert chunker_for(local).capacity == 254  # [CLS] and [SEP] come on top
    assert chunking_name(local) == "wp256o125p"  # the overlap: an eighth of CHUNK_TOKENS
    ollama = Settings(**base, embedder="ollama")
    assert (ollama.chunk_tokens, ollama.chunk_overlap_tokens) == (256, 32)
    assert ollama.context_tokens == 2048 and chunker_for(ollama).capacity == 256 * 3
    assert chunking_name(ollama) == chunker_for(ollama).name == "ch768o96p"
    small = Settings(**base, embedder="openai", embed_context_tokens=100, chunk_tokens=512)
    assert budget_tokens(small) == 100 and chunker_for(small).capacity == 300
    with pytest.raises(ValidationError, match="CHUNK_WHOLE_TOKENS"):
        Settings(**base, chunk_tokens=128, chunk_whole_tokens=64)
    with pytest.raises(ValidationError, match="CHUNK_OVERLAP_TOKENS"):
        Settings(**base, chunk_tokens=64, chunk_overlap_tokens=40)


def test_a_chunk_never_holds_two_paragraphs_that_could_stand_alone() -> None:
    chunker = token_chunker(64, 8, whole=128)
    assert chunker.fragment == 62 // 8
    heading, medium = "Duties", " ".join(["The platform team runs the nightly feed."] * 9)
    long_paragraph = LONG.replace("\n\n", " ")
    text = (
        f"{heading}\n\n{medium}\n\n{long_paragraph}\n \n{PROSE.strip()}\n\nNotes:\n\n"
        f"{LAST}\n\nThanks."
    )
    chunks = chunker.split(text)
    check(text, chunks, 128)
    by_text = {c.text: c for c in chunks}
    # A heading joins the paragraph after it; that paragraph (over CHUNK_TOKENS, within
    # whole) is one chunk, read whole by the model.
    assert 64 < count_tokens(medium) <= 128 and f"{heading}\n\n{medium}" in by_text
    # The long paragraph is cut by the splitter within its own span, overlaps included.
    at = text.index(long_paragraph)
    inside = [c for c in chunks if at <= c.start and c.end <= at + len(long_paragraph)]
    assert len(inside) > 5 and all(c.tokens <= 64 for c in inside)
    assert any(b.start < a.end for a, b in itertools.pairwise(inside))
    # Paragraphs that can stand alone stay apart; a fragment opens the next one's chunk; a
    # last fragment stands alone.
    for paragraph in PROSE.strip().split("\n\n"):
        assert paragraph in by_text
    assert f"Notes:\n\n{LAST}" in by_text and chunks[-1].text == "Thanks."
    for chunk in chunks:
        if match := PARAGRAPH_BREAK.search(chunk.text):  # only after fragments
            assert count_tokens(chunk.text[: match.start()]) - 2 <= chunker.fragment


def test_paragraphs_are_the_blank_line_separated_parts_trimmed() -> None:
    text = "\n\n  first line\nsame paragraph \n\t\n\n second\r\n\r\nthird  \n"
    assert [text[s:e] for s, e in paragraphs(text)] == [
        "first line\nsame paragraph",
        "second",
        "third",
    ]
    assert list(paragraphs(" \n\n ")) == []

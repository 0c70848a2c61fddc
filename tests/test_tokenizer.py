"""The shipped model's tokenizer: counts every word piece, or cuts where the model cuts."""

from common.embedders.tokenizer import MAX_MODEL_TOKENS, count_tokens, load_tokenizer


def test_counts_word_pieces_with_the_special_tokens() -> None:
    # [CLS] hello world [SEP]
    assert count_tokens("hello world") == 4


def test_counting_never_truncates_and_the_model_view_cuts_at_its_maximum() -> None:
    long_text = "word " * 1000
    assert count_tokens(long_text) == 1002
    assert len(load_tokenizer(truncate=True).encode(long_text).ids) == MAX_MODEL_TOKENS

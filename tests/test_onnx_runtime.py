"""The local model on ONNX Runtime (LOCAL_RUNTIME=onnx|onnx-int8): the same vectors as
PyTorch, one export per weights shared by every process, a damaged export made again, and a
gateway that embeds queries without torch in its memory."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from common.embedders import build_embedder
from common.embedders.local import LocalEmbedder
from common.embedders.onnx import OnnxEmbedder, model_file
from common.embedders.onnx_export import cached_path, is_intact
from common.embedders.tokenizer import local_model_path
from common.settings import Settings
from tests import processes
from tests.conftest import extra_gateway, make_key

pytestmark = pytest.mark.slow

TEXTS = [
    "Senior data engineer in Nairobi, building Spark pipelines for a telecom",
    "Pastry chef wanted",
    "Login fails after the password reset; the error says the token expired. " * 30,  # > 256
    "Zürich: Krankenpfleger (m/w/d) für Nachtschichten, ab sofort",
    "x",
]


def _export_concurrently(cache_dir: Path, n: int = 3) -> list[subprocess.CompletedProcess[str]]:
    command = [sys.executable, "-m", "common.embedders.onnx_export", "--cache-dir", str(cache_dir)]
    with ThreadPoolExecutor(n) as pool:
        runs = pool.map(
            lambda _: subprocess.run(command, capture_output=True, text=True, timeout=900),
            range(n),
        )
        return list(runs)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    """A cache made by three exporters started together (the module's other tests reuse it)."""
    cache_dir = tmp_path_factory.mktemp("onnx-cache")
    return cache_dir, _export_concurrently(cache_dir)


def _cosines(a: list[list[float]], b: list[list[float]]) -> np.ndarray:
    x, y = np.asarray(a), np.asarray(b)
    return (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))


@pytest.fixture(scope="module")
def torch_vectors() -> list[list[float]]:
    return LocalEmbedder("all-MiniLM-L6-v2", 384).embed(TEXTS)


def test_concurrent_workers_export_once(cache: tuple[Path, list]) -> None:
    cache_dir, runs = cache
    assert all(run.returncode == 0 for run in runs), [run.stderr[-2000:] for run in runs]
    assert len({run.stdout.strip() for run in runs}) == 1  # every one names the same file
    assert sum("exported" in run.stderr for run in runs) == 1
    [path] = cache_dir.glob("*.fp32.onnx")
    assert is_intact(path)
    assert not list(cache_dir.glob("*.tmp"))


def test_onnx_vectors_equal_torchs(
    cache: tuple[Path, list], torch_vectors: list[list[float]]
) -> None:
    vectors = OnnxEmbedder("all-MiniLM-L6-v2", 384, cache_dir=cache[0], threads=2).embed(TEXTS)
    assert _cosines(vectors, torch_vectors).min() > 0.999
    assert all(abs(np.linalg.norm(v) - 1) < 1e-4 for v in vectors)


def test_int8_vectors_are_close_to_torchs(
    cache: tuple[Path, list], torch_vectors: list[list[float]]
) -> None:
    embedder = OnnxEmbedder("all-MiniLM-L6-v2", 384, variant="int8", cache_dir=cache[0])
    assert _cosines(embedder.embed(TEXTS), torch_vectors).min() > 0.98


def test_a_cached_export_is_reused(
    cache: tuple[Path, list], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = cached_path(cache[0], local_model_path(), "fp32")
    before = path.stat().st_mtime_ns

    def no_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(subprocess, "run", no_export)
    assert model_file(cache[0], local_model_path(), "fp32") == path
    assert path.stat().st_mtime_ns == before


@pytest.mark.parametrize("damage", ["flipped byte", "truncated", "no digest"])
def test_a_damaged_export_is_made_again(cache: tuple[Path, list], damage: str) -> None:
    # int8: made again from the intact fp32 file in seconds.
    path = model_file(cache[0], local_model_path(), "int8")
    if damage == "flipped byte":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:1000])
    else:  # a crash between renaming the file in and writing its digest
        path.with_name(path.name + ".sha256").unlink()
    assert not is_intact(path)
    assert model_file(cache[0], local_model_path(), "int8") == path
    assert is_intact(path)
    embedder = OnnxEmbedder("all-MiniLM-L6-v2", 384, variant="int8", cache_dir=cache[0])
    assert len(embedder.embed(["still works"])[0]) == 384


def test_settings_pick_the_runtime(cache: tuple[Path, list]) -> None:
    # EMBEDDER explicitly: the suite's stack fixture puts EMBEDDER=ollama in os.environ.
    base = {"database_url": "postgresql://u:p@h/db", "redis_url": "redis://h:6379/0"}
    chosen = {
        runtime: build_embedder(
            Settings(**base, embedder="local", local_runtime=runtime, local_cache_dir=cache[0])
        )
        for runtime in ("onnx", "onnx-int8", "torch")
    }
    assert isinstance(chosen["onnx"], OnnxEmbedder) and chosen["onnx"].variant == "fp32"
    assert isinstance(chosen["onnx-int8"], OnnxEmbedder) and chosen["onnx-int8"].variant == "int8"
    assert isinstance(chosen["torch"], LocalEmbedder)
    assert Settings(**base).local_runtime == "onnx"


def test_gateway_on_onnx_embeds_queries_without_torch(
    cache: tuple[Path, list], stack_env: dict[str, str], tmp_root: Path, db: object
) -> None:
    overrides = {
        "EMBEDDER": "local",
        "EMBED_MODEL": "all-MiniLM-L6-v2",
        "LOCAL_RUNTIME": "onnx",
        "LOCAL_CACHE_DIR": str(cache[0]),
    }
    key = make_key(db, "onnx-gateway")  # type: ignore[arg-type]
    with extra_gateway(stack_env, tmp_root, "gateway-onnx", **overrides) as gateway:
        answer = httpx.get(
            gateway.url + "/api/v1/search",
            params={"q": "data engineering jobs in Kenya", "mode": "dense"},
            headers={"X-API-Key": key},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"] == "all-MiniLM-L6-v2"
        assert isinstance(gateway, processes.Gateway) and gateway.process is not None
        maps = Path(f"/proc/{gateway.process.pid}/maps").read_text()
    assert "onnxruntime" in maps
    assert "libtorch" not in maps

"""The embedder clients against the stub server: protocol, batching, and failure kinds."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import pytest

from common.embedders import PermanentEmbedError, TransientEmbedError
from common.embedders.base import Embedder
from common.embedders.ollama import OllamaEmbedder
from common.embedders.openai import OpenAIEmbedder
from tests.stub_embedder import NAN_MARK, POISON_MARK, StubServer, embed_text

DIM = 384


def make(kind: str, stub: StubServer, timeout: float = 5.0) -> Embedder:
    if kind == "ollama":
        return OllamaEmbedder("stub-embed", DIM, stub.url, timeout)
    return OpenAIEmbedder("stub-embed", DIM, stub.url + "/v1", timeout, api_key="k")


KINDS = ["ollama", "openai"]


@pytest.fixture
def stub() -> Iterator[StubServer]:
    """A stub of this test's own: the session's is shared with the running worker."""
    server = StubServer().start()
    yield server
    server.shutdown()


@pytest.mark.parametrize("kind", KINDS)
def test_many_inputs_in_one_call(kind: str, stub: StubServer) -> None:
    texts = [f"text number {i}" for i in range(10)]
    vectors = make(kind, stub).embed(texts)
    assert stub.behaviour.calls == 1 and stub.behaviour.inputs == 10
    assert vectors == [embed_text(t, DIM) for t in texts]


@pytest.mark.parametrize("kind", KINDS)
async def test_async_embed_matches_sync(kind: str, stub: StubServer) -> None:
    embedder = make(kind, stub)
    assert await embedder.aembed(["same text"]) == embedder.embed(["same text"])
    assert await embedder.aping() == "ok"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("status", [429, 500, 503])
def test_overload_and_server_errors_are_transient(kind: str, status: int, stub: StubServer) -> None:
    stub.behaviour.fail_status, stub.behaviour.fail_times = status, 1
    stub.behaviour.retry_after = "7"
    with pytest.raises(TransientEmbedError) as caught:
        make(kind, stub).embed(["x"])
    assert caught.value.retry_after == 7.0
    assert str(status) in str(caught.value)


@pytest.mark.parametrize("kind", KINDS)
def test_timeout_is_transient(kind: str, stub: StubServer) -> None:
    stub.behaviour.hang_times, stub.behaviour.hang_s = 1, 3.0
    with pytest.raises(TransientEmbedError):
        make(kind, stub, timeout=0.3).embed(["x"])


def test_connection_refused_is_transient() -> None:
    embedder = OllamaEmbedder("m", DIM, "http://127.0.0.1:9", 1.0)
    with pytest.raises(TransientEmbedError):
        embedder.embed(["x"])


@pytest.mark.parametrize("kind", KINDS)
def test_rejected_input_is_permanent(kind: str, stub: StubServer) -> None:
    with pytest.raises(PermanentEmbedError, match="400"):
        make(kind, stub).embed(["fine", f"too long {POISON_MARK}"])


@pytest.mark.parametrize("kind", KINDS)
def test_nan_values_are_permanent(kind: str, stub: StubServer) -> None:
    with pytest.raises(PermanentEmbedError, match="NaN"):
        make(kind, stub).embed(["fine", f"bad {NAN_MARK}"])


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_dimension_is_permanent_and_names_both(kind: str, stub: StubServer) -> None:
    stub.behaviour.wrong_dim = True
    with pytest.raises(PermanentEmbedError, match=r"385 dimensions.*384"):
        make(kind, stub).embed(["x"])


def test_retry_after_is_capped(stub: StubServer) -> None:
    stub.behaviour.fail_status, stub.behaviour.fail_times = 429, 1
    stub.behaviour.retry_after = "86400"
    with pytest.raises(TransientEmbedError) as caught:
        make("ollama", stub).embed(["x"])
    assert caught.value.retry_after is not None and caught.value.retry_after <= 60


def test_stub_vectors_are_unit_length() -> None:
    assert math.isclose(sum(x * x for x in embed_text("a b c", DIM)), 1.0)


def test_zero_vector_is_permanent() -> None:
    class Zero(Embedder):
        name = "zero"

        def _embed(self, texts: Sequence[str]) -> list[list[float]]:
            return [[0.0] * DIM for _ in texts]

    with pytest.raises(PermanentEmbedError, match="zero vector"):
        Zero("m", DIM).embed(["x"])

"""Interactive docs (``/docs``, ``/redoc``, ``/openapi.json``): on by default, off by
``DOCS_ENABLED=false``, and turning them off leaves the API itself untouched."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine

from tests import processes
from tests.conftest import event_body, extra_gateway, make_key, new_key, status_of, wait_for

DOC_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")


@pytest.fixture(scope="module")
def no_docs_gateway(stack_env: dict[str, str], tmp_root: Path) -> Iterator[processes.Gateway]:
    with extra_gateway(stack_env, tmp_root, "gateway-no-docs", DOCS_ENABLED="false") as gateway:
        yield gateway


def test_docs_are_served_by_default(gateway: processes.Gateway) -> None:
    for path in DOC_PATHS:
        assert httpx.get(f"{gateway.url}{path}").status_code == 200, path
    assert httpx.get(f"{gateway.url}/openapi.json").json()["info"]["title"] == "eventsearch"


def test_docs_disabled_answers_404_in_the_error_shape(no_docs_gateway: processes.Gateway) -> None:
    for path in DOC_PATHS:
        response = httpx.get(f"{no_docs_gateway.url}{path}")
        assert response.status_code == 404, path
        error = response.json()["error"]
        assert error["code"] == "not_found", path
        assert error["request_id"] == response.headers["x-request-id"], path


def test_docs_disabled_leaves_the_api_working(
    no_docs_gateway: processes.Gateway, db: Engine, worker: processes.Proc
) -> None:
    assert httpx.get(f"{no_docs_gateway.url}/health").status_code == 200
    headers = {"X-API-Key": make_key(db, "t-no-docs")}
    with httpx.Client(base_url=no_docs_gateway.url, headers=headers, timeout=30) as client:
        accepted = client.post(
            "/api/v1/events", json=event_body(), headers={"Idempotency-Key": new_key()}
        )
        assert accepted.status_code == 202, accepted.text
        event_id = accepted.json()["id"]
        wait_for(lambda: status_of(client, event_id)["status"] == "embedded", what="embedded")
        search = client.get("/api/v1/search", params={"q": "event"})
        assert search.status_code == 200, search.text
        assert "results" in search.json()

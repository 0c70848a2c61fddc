"""API keys: 401 without a valid key, 403 without the scope, and tenants kept apart."""

from __future__ import annotations

import subprocess
import sys
import uuid

import httpx
import pytest
from sqlalchemy.engine import Engine

from tests import processes
from tests.conftest import event_body, make_key, new_key, wait_for


def post_event(url: str, key: str, text: str | None = None) -> httpx.Response:
    return httpx.post(
        f"{url}/api/v1/events",
        json=event_body(text),
        headers={"Authorization": f"Bearer {key}", "Idempotency-Key": new_key()},
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/events"),
        ("GET", f"/api/v1/events/{uuid.uuid4()}"),
        ("GET", "/api/v1/search?q=x"),
        ("POST", "/api/v1/search"),
        ("GET", "/api/v1/stats"),
    ],
)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer es_wrong"},
        {"X-API-Key": "es_wrong"},
        {"Authorization": "Basic abc"},
    ],
)
def test_missing_or_wrong_key_is_401(
    gateway: processes.Gateway, method: str, path: str, headers: dict[str, str]
) -> None:
    response = httpx.request(method, gateway.url + path, headers=headers, json={"query": "x"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_x_api_key_header_works(gateway: processes.Gateway, api_key: str) -> None:
    response = httpx.get(gateway.url + "/api/v1/search?q=x", headers={"X-API-Key": api_key})
    assert response.status_code == 200


def test_key_without_scope_is_403(gateway: processes.Gateway, db: Engine) -> None:
    search_only = make_key(db, "t1", "search")
    response = post_event(gateway.url, search_only)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"
    ingest_only = make_key(db, "t1", "ingest")
    response = httpx.get(gateway.url + "/api/v1/search?q=x", headers={"X-API-Key": ingest_only})
    assert response.status_code == 403


def test_revoked_key_is_refused(gateway: processes.Gateway, db: Engine, stack_env: dict) -> None:
    key = make_key(db, "t1", "ingest")
    assert post_event(gateway.url, key).status_code == 202
    key_id = (
        subprocess.run(
            [sys.executable, "-m", "cli.main", "keys", "list", "--tenant", "t1"],
            env=stack_env,
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.splitlines()[-1]
        .split()[0]
    )
    subprocess.run(
        [sys.executable, "-m", "cli.main", "keys", "revoke", key_id],
        env=stack_env,
        check=True,
        capture_output=True,
    )
    # The gateway trusts a checked key for AUTH_CACHE_TTL_S (1 s in tests).
    wait_for(lambda: post_event(gateway.url, key).status_code == 401, timeout=30, what="revoked")


def test_cli_creates_a_key_printed_once(gateway: processes.Gateway, stack_env: dict) -> None:
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "keys",
            "create",
            "--tenant",
            "cli-t",
            "--scopes",
            "ingest,search",
        ],
        env=stack_env,
        capture_output=True,
        text=True,
        check=True,
    )
    key = made.stdout.strip()
    assert key.startswith("es_") and len(key) > 40
    assert post_event(gateway.url, key).status_code == 202
    listed = subprocess.run(
        [sys.executable, "-m", "cli.main", "keys", "list"],
        env=stack_env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert key not in listed and key[:10] in listed


def test_cli_refuses_unknown_scope(stack_env: dict) -> None:
    made = subprocess.run(
        [sys.executable, "-m", "cli.main", "keys", "create", "--tenant", "x", "--scopes", "root"],
        env=stack_env,
        capture_output=True,
        text=True,
    )
    assert made.returncode == 2 and "scopes must be among" in made.stderr


def test_other_tenants_event_is_404_and_never_found(
    gateway: processes.Gateway, worker: processes.Proc, db: Engine, api_key: str
) -> None:
    other = make_key(db, "t2")
    marker = f"isolation {uuid.uuid4().hex}"
    mine = post_event(gateway.url, api_key, marker).json()["id"]
    auth_mine, auth_other = {"X-API-Key": api_key}, {"X-API-Key": other}
    url = f"{gateway.url}/api/v1/events/{mine}"
    wait_for(lambda: httpx.get(url, headers=auth_mine).json()["status"] == "embedded")
    response = httpx.get(url, headers=auth_other)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    found = httpx.get(f"{gateway.url}/api/v1/search", params={"q": marker}, headers=auth_other)
    assert mine not in [r["id"] for r in found.json()["results"]]
    found = httpx.get(f"{gateway.url}/api/v1/search", params={"q": marker}, headers=auth_mine)
    assert found.json()["results"][0]["id"] == mine


def test_same_idempotency_key_in_two_tenants_makes_two_events(
    gateway: processes.Gateway, db: Engine, api_key: str
) -> None:
    other, key, body = make_key(db, "t3"), new_key(), event_body()
    ids = []
    for api in (api_key, other):
        response = httpx.post(
            f"{gateway.url}/api/v1/events",
            json=body,
            headers={"X-API-Key": api, "Idempotency-Key": key},
        )
        assert response.status_code == 202
        assert "idempotent-replayed" not in response.headers
        ids.append(response.json()["id"])
    assert ids[0] != ids[1]
